"""The pure policy engine: no Faust, no Kafka, no clock.

`process(state, person, kind, value, ctx)` is the whole contract; see `evaluate`.
"""

from .evaluate import (
    ALERT,
    CODE_CHANGE,
    COMMAND,
    EXPOSURE,
    NOTICE,
    REEVALUATE,
    RESULT,
    SCAN,
    TICK,
    Context,
    Outcome,
    advance,
    process,
)
from .fanout import VisitorIndex, exposure_alert, pool_alert, split_result
from .policy import Policy, PolicyBook, PolicyError, load_policy, load_policy_dir
from .register import LevelChange, Register, trip_key
from .state import Control, PersonState

__all__ = [
    "ALERT", "CODE_CHANGE", "COMMAND", "EXPOSURE", "NOTICE", "REEVALUATE", "RESULT", "SCAN",
    "TICK", "Context", "Control", "LevelChange", "Outcome", "PersonState", "Policy",
    "PolicyBook", "PolicyError", "Register", "VisitorIndex", "advance", "exposure_alert",
    "load_policy", "load_policy_dir", "pool_alert", "process", "split_result", "trip_key",
]

"""The sans-IO pipeline core that the offline replay and the live worker both drive."""

from .core import (
    CoreConfig,
    Decision,
    Message,
    Output,
    Pipeline,
    Routed,
    Work,
)

__all__ = ["CoreConfig", "Decision", "Message", "Output", "Pipeline", "Routed", "Work"]

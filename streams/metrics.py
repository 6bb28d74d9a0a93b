"""Every Prometheus metric the worker exports, defined once.

Conventions: base units (seconds), `_total` on counters, bounded label sets (stream,
outcome, reason, colour, rule id — never a person, a scan id or an area code).
"""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Gauge, Histogram

# Seconds-level objective: codes out within seconds; buckets resolve 5 ms .. 2 min.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0)

E2E_LATENCY = Histogram(
    "checkpoint_e2e_latency_seconds",
    "Input event time to emitted output (code change or alert), by input stream and outcome",
    ["stream", "outcome"], buckets=LATENCY_BUCKETS,
)
PROCESSING = Histogram(
    "checkpoint_processing_seconds",
    "Wall time spent processing one batch of inputs, per input, by stream",
    ["stream"], buckets=(0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0),
)
INPUTS = Counter("checkpoint_inputs_total", "Inputs consumed, by stream and outcome status",
                 ["stream", "status"])
OUTPUTS = Counter("checkpoint_outputs_total", "Messages produced, by output topic", ["topic"])
DEAD_LETTERS = Counter("checkpoint_dead_letters_total", "Inputs rejected to the dead-letter topic",
                       ["stream", "reason"])
CODE_CHANGES = Counter("checkpoint_code_changes_total", "Code-change events by kind, colours and rule",
                       ["kind", "from_colour", "to_colour", "rule"])
ALERTS = Counter("checkpoint_alerts_total", "Alerts raised, by kind and severity", ["kind", "severity"])
PERSONS = Gauge("checkpoint_persons", "Persons held in state on this worker")
PERSON_STATES_DELETED = Counter(
    "checkpoint_person_states_deleted_total",
    "Person states deleted (tombstoned) once nothing in them could matter (docs/privacy.md)")
ACTIVE_CONTROLS = Gauge("checkpoint_active_controls", "Active controls on this worker, by colour",
                        ["colour"])
PENDING_RELEASES = Gauge("checkpoint_pending_releases", "Persons with a timed transition pending")
OVERDUE_RELEASES = Gauge(
    "checkpoint_overdue_releases",
    "Persons whose due time passed more than two timer intervals ago without being fired",
)
RELEASE_DELAY = Histogram(
    "checkpoint_release_delay_seconds", "Due time to the timer firing it",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 5.0, 10.0, 60.0),
)
REGISTER_AREAS = Gauge("checkpoint_register_areas", "Areas with a level history in the register")
REGISTER_READY = Gauge("checkpoint_register_ready", "1 once the register caught up with its topic")
VISITOR_INDEX = Gauge("checkpoint_visitor_index_entries", "Recent visitor entries in the index")
REEVALUATIONS = Counter("checkpoint_reevaluations_total",
                        "Person re-evaluations routed after a raise or an exposed trip", ["cause"])
POLICY_IN_FORCE = Gauge("checkpoint_policy_in_force_info",
                        "1 for each policy in force now, per jurisdiction",
                        ["jurisdiction", "policy", "version"])
CONSUMER_LAG = Gauge("checkpoint_consumer_lag_messages", "End offset minus committed offset",
                     ["topic", "partition"])
LAG_SAMPLE_ERRORS = Counter("checkpoint_consumer_lag_sample_errors_total",
                            "Consumer-lag samples that failed (broker unreachable, coordinator moving)")
RELEASE_TIMER_LAST_RUN = Gauge(
    "checkpoint_release_timer_last_run_timestamp_seconds",
    "Wall-clock time the release timer last ran to completion (a stalled timer means late releases)",
)
OUTPUT_SEND_ERRORS = Counter("checkpoint_output_send_errors_total",
                             "Outputs whose delivery to the broker failed",
                             ["topic"])
REFETCHES = Counter(
    "checkpoint_consumer_refetches_total",
    "Seeks back over records the consumer fetched but Faust never handed to the agent "
    "(dropped around a rebalance; streams.runtime.refetch), by topic",
    ["topic"])
FORWARDED = Counter(
    "checkpoint_forwarded_inputs_total",
    "Person inputs that arrived on a partition their person is not on (a producer with another "
    "partitioner) and went to the person's own, by input stream; counted as inputs there",
    ["stream"])
PROCESSING_ERRORS = Counter(
    "checkpoint_processing_errors_total",
    "Inputs the pipeline could not decide (an error for that input only: dead-lettered as "
    "processing_error, every other input goes on), by input stream", ["stream"])


def cache_labels(metric: Any) -> Any:
    """Make `metric.labels(...)` a dictionary lookup after the first call per label set.

    prometheus-client's `labels()` validates and joins the label values on every call
    (a few microseconds), paid several times per input on the hot path by these metrics
    and by Faust's sensor. A child removed (`remove`, `clear`: Faust's sensor drops its
    per-partition series after a rebalance) empties the cache, so no orphaned child is
    handed out. Label sets are bounded, so is the cache."""
    children: dict[Any, Any] = {}
    labels = type(metric).labels.__get__(metric)
    remove, clear = metric.remove, metric.clear

    def cached_labels(*values: Any, **named: Any) -> Any:
        key = (values, tuple(named.items()))
        child = children.get(key)
        if child is None:
            child = children[key] = labels(*values, **named)
        return child

    def removing(*values: Any) -> None:
        children.clear()
        remove(*values)

    def clearing() -> None:
        children.clear()
        clear()

    metric.labels, metric.remove, metric.clear = cached_labels, removing, clearing
    return metric


for _metric in (E2E_LATENCY, PROCESSING, INPUTS, OUTPUTS, DEAD_LETTERS, CODE_CHANGES, ALERTS,
                REEVALUATIONS, OUTPUT_SEND_ERRORS, PROCESSING_ERRORS, FORWARDED):
    cache_labels(_metric)

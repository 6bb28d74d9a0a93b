"""Every topic name of the contract in one place (`schemas/asyncapi.yaml` is the contract;
a test keeps this module and the document in step).

These are the contract's names, the names recordings and the pipeline core use. On the
broker a deployment's namespace prefixes them (`Settings.topic`), so that several
deployments or test runs can share one cluster.
"""

from __future__ import annotations

STATION_SCANS = "checkpoint.scans.station"
HIGHWAY_SCANS = "checkpoint.scans.highway"
RISK_AREAS = "checkpoint.risk-areas"
PCR_RESULTS = "checkpoint.pcr-results"
CONTACT_NOTICES = "checkpoint.contact-notices"
OPERATOR_COMMANDS = "checkpoint.operator-commands"
CODE_CHANGES = "checkpoint.code-changes"
ALERTS = "checkpoint.alerts"
DEAD_LETTERS = "checkpoint.dead-letters"
REPORTS = "checkpoint.reports"
POLICIES = "checkpoint.policies"
REPORT_PARTS = "checkpoint.internal.report-parts"
PERSON_WORK = "checkpoint.internal.person-work"
EXPOSURES = "checkpoint.internal.exposures"
#: Faust's own topics: the `persons` and `report-counts` tables' changelogs and the leader
#: topic, named by Faust from the app id (`checkpoint-streams`, streams.settings.APP_NAME):
#: `<app id>-<table>-changelog`, `<app id>-__assignor-__leader`
PERSONS_CHANGELOG = "checkpoint-streams-persons-changelog"
REPORT_COUNTS_CHANGELOG = "checkpoint-streams-report-counts-changelog"
ASSIGNOR_LEADER = "checkpoint-streams-__assignor-__leader"

#: input topic -> JSON Schema name (schemas/<name>.schema.json)
INPUT_SCHEMAS = {
    STATION_SCANS: "station-scan",
    HIGHWAY_SCANS: "highway-scan",
    RISK_AREAS: "risk-area-update",
    PCR_RESULTS: "pcr-result",
    CONTACT_NOTICES: "contact-notice",
    OPERATOR_COMMANDS: "operator-command",
}

#: short stream names used as bounded metric labels
STREAM_LABEL = {
    STATION_SCANS: "station",
    HIGHWAY_SCANS: "highway",
    RISK_AREAS: "area_update",
    PCR_RESULTS: "result",
    CONTACT_NOTICES: "notice",
    OPERATOR_COMMANDS: "command",
    PERSON_WORK: "work",
}

INPUT_TOPICS = tuple(INPUT_SCHEMAS)
OUTPUT_TOPICS = (CODE_CHANGES, ALERTS, DEAD_LETTERS)
#: the topics a worker's partitions consume (co-partitioned: partition p of each is p's)
PARTITION_TOPICS = (*INPUT_TOPICS, PERSON_WORK)

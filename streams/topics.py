"""Every topic name in one place (the AsyncAPI document is the contract; a test keeps
this module and `schemas/asyncapi.yaml` in step)."""

from __future__ import annotations

import os

#: Namespace for every topic name (e.g. "staging."), so that several deployments or test
#: runs can share one cluster. Empty in production and in recordings.
PREFIX = os.environ.get("CHECKPOINT_TOPIC_PREFIX", "")

STATION_SCANS = PREFIX + "checkpoint.scans.station"
HIGHWAY_SCANS = PREFIX + "checkpoint.scans.highway"
RISK_AREAS = PREFIX + "checkpoint.risk-areas"
PCR_RESULTS = PREFIX + "checkpoint.pcr-results"
CONTACT_NOTICES = PREFIX + "checkpoint.contact-notices"
OPERATOR_COMMANDS = PREFIX + "checkpoint.operator-commands"
CODE_CHANGES = PREFIX + "checkpoint.code-changes"
ALERTS = PREFIX + "checkpoint.alerts"
DEAD_LETTERS = PREFIX + "checkpoint.dead-letters"
REPORTS = PREFIX + "checkpoint.reports"
POLICIES = PREFIX + "checkpoint.policies"
REPORT_PARTS = PREFIX + "checkpoint.internal.report-parts"
PERSON_WORK = PREFIX + "checkpoint.internal.person-work"
AREA_WORK = PREFIX + "checkpoint.internal.area-work"
EXPOSURES = PREFIX + "checkpoint.internal.exposures"

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

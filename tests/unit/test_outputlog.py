"""The worker's log lines for its outputs: code changes summed up by default, alerts
one line each (streams.outputlog)."""

from __future__ import annotations

import logging

import pytest

from streams.outputlog import OutputLog
from streams.settings import Settings, SettingsError


def change(n: int, kind: str = "assign", to: str = "red") -> dict[str, object]:
    return {"id": f"cc-{n}", "kind": kind, "from": "green", "to": to, "rule": "R1",
            "caused_by": [f"st-{n}", "ra-1"]}


ALERT = {"id": "al-1", "kind": "positive_result", "severity": "page", "caused_by": ["rs-1"]}


def lines(caplog: pytest.LogCaptureFixture) -> list[tuple[str, dict[str, object]]]:
    return [(r.msg, r.__dict__) for r in caplog.records if r.name == "checkpoint_streams"]


def test_code_changes_are_summed_up_per_interval_and_alerts_logged_each(caplog):
    caplog.set_level(logging.INFO, "checkpoint_streams")
    out = OutputLog()
    for n in range(5):
        out.emitted("checkpoint.code-changes", change(n), "station", 0.1 * n)
    out.emitted("checkpoint.code-changes", change(9, "release", "green"), "timer", 0.05)
    out.emitted("checkpoint.alerts", ALERT, "result", 0.2)
    assert [msg for msg, _ in lines(caplog)] == ["alert"]  # nothing per code change
    out.flush()
    _, (summary, fields) = lines(caplog)
    assert summary == "code changes"
    assert fields["count"] == 6
    assert fields["by_kind"] == {"assign green->red": 5, "release green->green": 1}
    assert fields["latency_max_seconds"] == 0.4
    caplog.clear()
    out.flush()  # nothing since: no line
    assert lines(caplog) == []


def test_each_logs_one_line_per_code_change_with_its_ids(caplog):
    caplog.set_level(logging.INFO, "checkpoint_streams")
    out = OutputLog("each")
    out.emitted("checkpoint.code-changes", change(1), "station", 0.1234)
    out.flush()
    ((msg, fields),) = lines(caplog)
    assert msg == "code change"
    assert fields["output_id"] == "cc-1" and fields["input_id"] == "st-1"
    assert fields["to"] == "red" and fields["rule"] == "R1" and fields["latency_seconds"] == 0.123


def test_the_setting_is_checked():
    assert Settings.from_env({}).log_outputs == "summary"
    assert Settings.from_env({"CHECKPOINT_LOG_OUTPUTS": "each"}).log_outputs == "each"
    with pytest.raises(SettingsError, match="CHECKPOINT_LOG_OUTPUTS='all': expected one of each, summary"):
        Settings.from_env({"CHECKPOINT_LOG_OUTPUTS": "all"})

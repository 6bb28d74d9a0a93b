"""Issue 4 through the replay command line: --until passes time, controls live and end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

RECORDING = Path(__file__).resolve().parent.parent / "scenarios" / "life-of-a-control.jsonl"


def replay(until: str) -> list[dict]:
    done = subprocess.run([sys.executable, "-m", "streams.cli", "replay", str(RECORDING),
                           "--until", until, "--no-summary"],
                          capture_output=True, check=True)
    return [orjson.loads(line)["value"] for line in done.stdout.splitlines()]


@pytest.fixture(scope="module")
def outputs() -> list[dict]:
    return replay("2022-09-10T00:00:00+08:00")


def of(outputs: list[dict], person: str) -> list[tuple]:
    return [(o["kind"], o.get("from"), o.get("to"), o["event_time"]) for o in outputs
            if o.get("person") == person]


def test_release_on_time_after_every_scheduled_test(outputs):
    assert of(outputs, "life-on-time") == [
        ("assign", "green", "yellow", "2022-08-21T10:00:00+08:00"),
        ("release", "yellow", "green", "2022-08-28T10:00:00+08:00"),
    ]


def test_releases_after_the_last_record_need_until():
    early = replay("2022-09-03T11:59:59+08:00")  # the close contact is due at 12:00
    assert [k for k, *_ in of(early, "life-close")][-1] != "release"


def test_positive_result_turns_red_alerts_and_holds_until_an_override(outputs):
    kinds = [k for k, *_ in of(outputs, "life-positive")]
    assert kinds == ["assign", "assign", "positive_result", "hold_release", "command_rejected",
                     "release", "release"]
    final = [o for o in outputs if o.get("person") == "life-positive" and o["kind"] == "release"]
    assert final[-1]["to"] == "green"
    assert {o["command"]["id"] for o in final} == {"cmd-life-release-2"}


@pytest.mark.parametrize(("person", "rule", "colour", "release"), [
    ("life-close", "T-close-contact", "red", "2022-09-03T12:00:00+08:00"),  # 10 days + 3 extended
    ("life-secondary", "T-secondary-contact", "red", "2022-08-28T12:05:00+08:00"),
    ("life-companion", "T-companion", "yellow", "2022-08-31T12:10:00+08:00"),
])
def test_contact_notices(outputs, person, rule, colour, release):
    events = [o for o in outputs if o.get("person") == person and "rule" in o and "from" in o]
    assert (events[0]["kind"], events[0]["rule"], events[0]["to"]) == ("assign", rule, colour)
    assert (events[-1]["kind"], events[-1]["to"], events[-1]["event_time"]) == ("release", "green", release)


def test_big_data_push_is_temporary_yellow_until_an_operator_reclassifies(outputs):
    events = [o for o in outputs if o.get("person") == "life-big-data"]
    assert [(o["kind"], o["to"]) for o in events] == [("assign", "yellow"), ("reclassify", "green")]
    assert events[1]["command"] == {"id": "cmd-life-bigdata", "operator": "op-yuncheng-07"}


def test_operator_extension_is_audited(outputs):
    extend = [o for o in outputs if o.get("person") == "life-close" and o["kind"] == "extend"]
    assert extend[0]["command"]["operator"] == "op-yuncheng-07"
    assert extend[0]["release_at"] == "2022-09-03T12:00:00+08:00"


def test_three_code_check(outputs):
    mismatch = [o for o in outputs if o["kind"] == "three_code_mismatch"]
    assert {(o["person"], o["severity"]) for o in mismatch} == {("life-close", "page"),
                                                                 ("life-star", "warn")}


def test_blue_mark_without_a_code_change(outputs):
    assert [(k, f, t) for k, f, t, _ in of(outputs, "life-hainan")] == [
        ("mark", "green", "green"), ("release", "green", "green")]
    blue = next(o for o in outputs if o.get("person") == "life-hainan")
    assert blue["mark"] == "blue" and blue["rule"] == "TY0820-R4-hainan"

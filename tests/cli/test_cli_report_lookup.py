"""`report`, `status` and `areas` from recordings, as an operator runs them."""

from __future__ import annotations

import json

from streams import contracts
from tests.cli.conftest import SCENARIOS, one_line_error

PINGYAO = SCENARIOS / "pingyao.jsonl"
TAIYUAN = SCENARIOS / "taiyuan-0820.jsonl"


# ---------------------------------------------------------------------------- report
def test_report_for_a_day_and_a_city_as_json_lines(run):
    done = run("report", PINGYAO, "--day", "2022-08-19", "--area", "1407", "--json")
    assert done.returncode == 0, done.stderr
    reports = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(reports) == 11  # every county of Jinzhong files one, zeros included
    for report in reports:
        contracts.validator("report").validate(report)
        assert report["area"].startswith("1407") and report["date"] == "2022-08-19"
    pingyao = next(r for r in reports if r["area"] == "140728")
    assert pingyao["assigned"]["red"] == 40 and pingyao["by_rule"] == {"T-positive": 40}
    assert pingyao["alerts"] == {"positive_pool": 2}
    quiet = [r for r in reports if r["area"] != "140728"]
    assert all(r["by_rule"] == {} and r["arrivals"] == {"station": 0, "highway": 0} for r in quiet)


def test_report_table_shows_activity_and_counts_zero_reports(run):
    done = run("report", PINGYAO, "--day", "2022-08-19", "--area", "1407")
    assert done.returncode == 0
    assert "140728 山西省晋中市平遥县" in done.stdout and "T-positive 40" in done.stdout
    assert "11 reports over 1 day: 1 with activity, 10 zero reports" in done.stdout
    listed = run("report", PINGYAO, "--day", "2022-08-19", "--area", "1407", "--zeros").stdout
    assert "140702" in listed


def test_report_every_day_of_a_recording(run):
    done = run("report", PINGYAO, "--json", "--areas", "140728")
    dates = [json.loads(line)["date"] for line in done.stdout.splitlines()]
    assert dates == ["2022-08-18", "2022-08-19"]


def test_a_day_outside_the_recording_is_a_zero_report_with_a_note(run):
    done = run("report", PINGYAO, "--day", "2022-07-01", "--areas", "140728", "--json")
    assert done.returncode == 0
    (report,) = [json.loads(line) for line in done.stdout.splitlines()]
    assert report["id"] == "rp-140728-2022-07-01" and report["assigned"]["red"] == 0
    assert "outside the recording" in done.stderr


def test_report_errors(run):
    assert run("report", PINGYAO, "--day", "19/08/2022").returncode == 2
    assert run("report", PINGYAO, "--area", "Pingyao").returncode == 2
    assert run("report", PINGYAO, "--areas", "14,Shanxi").returncode == 2
    done = run("report", "/no/such.jsonl")
    assert done.returncode == 1 and one_line_error(done) == "error: no such recording: /no/such.jsonl"


def test_a_recording_with_bad_lines_still_reports(run, tmp_path):
    recording = tmp_path / "mixed.jsonl"
    recording.write_bytes(b"not json\n" + PINGYAO.read_bytes())
    done = run("report", recording, "--day", "2022-08-19", "--areas", "140728", "--json")
    assert done.returncode == 0
    assert json.loads(done.stdout)["assigned"]["red"] == 40


# ---------------------------------------------------------------------------- status
def test_status_from_a_recording(run):
    done = run("status", "ty-medium-traveller", "--recording", TAIYUAN,
               "--until", "2022-08-26T00:00:00+08:00")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith("ty-medium-traveller  yellow   as of 2022-08-26T00:00:00+08:00")
    assert "last arrival: TY-SOUTH (station, 140105 山西省太原市小店区)" in out
    for text in ("active controls", "TY0820-R3-medium", "2022-08-28 13:00", "test schedule",
                 "2022-08-22", "missed", "upcoming", "history", "green → yellow", "ra-610113-0815"):
        assert text in out


def test_status_json(run):
    done = run("status", "ty-medium-traveller", "--recording", TAIYUAN, "--json")
    status = json.loads(done.stdout)
    assert (status["code"], status["mark"]) == ("yellow", "yellow")
    (control,) = status["controls"]
    assert control["due"] == "2022-08-28T13:00:00+08:00" and control["rule"] == "TY0820-R3-medium"
    assert [(t["day"], t["date"]) for t in status["tests"]] == [
        (1, "2022-08-22"), (4, "2022-08-25"), (7, "2022-08-28")]
    assert status["history"][0]["caused_by"] == ["st-ty0820-3", "ra-610113-0815"]
    assert status["source"].startswith("replay of ")


def test_status_of_an_unknown_person_exits_3(run):
    done = run("status", "nobody-at-all", "--recording", TAIYUAN)
    assert done.returncode == 3
    assert one_line_error(done) == f"error: no person nobody-at-all in {TAIYUAN}"


def test_status_options_that_do_not_go_together(run):
    done = run("status", "x", "--recording", TAIYUAN, "--worker", "http://127.0.0.1:6066")
    assert done.returncode == 2 and "not both" in one_line_error(done)
    done = run("status", "x", "--until", "2022-08-26T00:00:00+08:00")
    assert done.returncode == 2 and "--until needs --recording" in one_line_error(done)


def test_status_and_areas_without_a_worker_are_one_line(run):
    for args in (["status", "ty-medium-traveller"], ["areas"]):
        done = run(*args, "--worker", "http://127.0.0.1:1", timeout=30)
        assert done.returncode == 1
        assert one_line_error(done).startswith("error: no worker answers at http://127.0.0.1:1")


# ----------------------------------------------------------------------------- areas
def test_areas_from_a_recording(run):
    done = run("areas", "--recording", TAIYUAN)
    assert done.returncode == 0
    assert "460204" in done.stdout and "海南省三亚市天涯区" in done.stdout and "high" in done.stdout
    assert "2 designated areas" in done.stdout
    data = json.loads(run("areas", "--recording", TAIYUAN, "--level", "medium", "--json").stdout)
    assert data["areas"] == [{"area": "610113", "level": "medium", "update": "ra-610113-0815",
                              "name": "陕西省西安市雁塔区"}]
    before = json.loads(run("areas", "--recording", TAIYUAN, "--at", "2022-08-10T00:00:00+08:00",
                            "--json").stdout)
    assert before["at"] == "2022-08-10T00:00:00+08:00"
    assert [a["area"] for a in before["areas"]] == ["460204"]  # Xi'an was raised on the 15th
    done = run("areas", "--at", "2022-08-10T00:00:00+08:00")
    assert done.returncode == 2 and "--at needs --recording" in one_line_error(done)

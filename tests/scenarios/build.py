"""Builds the scenario recordings in this folder from the reports in DOMAIN.md.

The recordings are committed; this script documents how they were made and rebuilds
them byte for byte (`python tests/scenarios/build.py`). Person references are readable
pseudonyms (never ID numbers) so that a reader can follow a scenario by eye.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

HERE = Path(__file__).resolve().parent
Z = "+08:00"


def ts(day: str, clock: str) -> str:
    return f"{day}T{clock}{Z}"


def record(topic: str, key: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"topic": topic, "key": key, "value": value}


def area(update_id: str, code: str, level: str, when: str, notice: str, name: str) -> dict[str, Any]:
    return record("checkpoint.risk-areas", code, {
        "id": update_id, "area": code, "level": level, "effective_at": when,
        "event_time": when, "notice": notice, "name": name,
    })


def scan(kind: str, scan_id: str, person: str, when: str, checkpoint: tuple[str, str],
         travel: list[tuple[str, str]], **extra: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "id": scan_id, "person": person, "event_time": when,
        "checkpoint": {"id": checkpoint[0], "kind": kind, "area": checkpoint[1]},
        "travel": [{"area": a, "date": d} for a, d in travel],
    }
    value.update(extra)
    return record(f"checkpoint.scans.{kind}", person, value)


def result(result_id: str, person: str, sample: str, collected: str, reported: str,
           outcome: str, lab_area: str | None = None) -> dict[str, Any]:
    value = {"id": result_id, "event_time": reported, "kind": "single", "person": person,
             "sample": sample, "collected_at": collected, "result": outcome}
    if lab_area:
        value["lab_area"] = lab_area
    return record("checkpoint.pcr-results", sample, value)


def write(name: str, records: list[dict[str, Any]]) -> None:
    path = HERE / f"{name}.jsonl"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    print(f"{path.relative_to(HERE.parent.parent)}: {len(records)} records")


TAIYUAN_STATION = ("TY-STATION", "140106")  # Taiyuan station, Yingze district
DESTINATIONS = ["140502", "140802", "140105", "140106", "140721", "140212", "140403"]


def z22() -> list[dict[str, Any]]:
    """Z22, 8·17: 78 passengers alight at Taiyuan; the trip is exposed; 7 test positive."""
    out = []
    for n in range(1, 79):
        person = f"z22-passenger-{n:03d}"
        out.append(scan(
            "station", f"st-z22-{n:03d}", person, ts("2022-08-17", f"21:{n % 50:02d}:00"),
            TAIYUAN_STATION, [("610113", "2022-08-16"), ("620102", "2022-08-15")],
            trip={"mode": "train", "number": "Z22", "date": "2022-08-17",
                  "carriage": f"{(n % 16) + 1:02d}", "alighting": "140106"},
            destination=DESTINATIONS[n % len(DESTINATIONS)],
            sample=f"S-Z22-{n:03d}",
        ))
    out.append(record("checkpoint.contact-notices", "train:Z22:2022-08-17", {
        "id": "nt-z22-exposed", "event_time": ts("2022-08-18", "09:30:00"), "kind": "exposed_trip",
        "trip": {"mode": "train", "number": "Z22", "date": "2022-08-17"}, "alighting": "1401",
        "case_ref": "Jincheng case 2022-08-17",
    }))
    # 7 later positive: Jincheng 5, Yuncheng 1, Taiyuan 1 (their destinations)
    positives = [n for n in range(1, 79) if DESTINATIONS[n % len(DESTINATIONS)] == "140502"][:5]
    positives += [next(n for n in range(1, 79) if DESTINATIONS[n % len(DESTINATIONS)] == "140802")]
    positives += [next(n for n in range(1, 79) if DESTINATIONS[n % len(DESTINATIONS)] == "140105")]
    for i, n in enumerate(positives):
        out.append(result(f"rs-z22-pos-{n:03d}", f"z22-passenger-{n:03d}", f"S-Z22-ISO-{n:03d}",
                          ts("2022-08-19", "08:00:00"), ts("2022-08-19", f"20:{i:02d}:00"),
                          "positive", DESTINATIONS[n % len(DESTINATIONS)]))
    for n in range(1, 79):  # daily tests in isolation (days 1 and 2 after the notice)
        if n in positives:
            continue
        for day in ("2022-08-19", "2022-08-20"):
            out.append(result(f"rs-z22-{n:03d}-{day[-2:]}", f"z22-passenger-{n:03d}",
                              f"S-Z22-{day[-2:]}-{n:03d}", ts(day, "07:30:00"),
                              ts(day, "16:00:00"), "negative"))
    for n in range(1, 4):  # close and secondary contacts traced at the destinations
        out.append(record("checkpoint.contact-notices", f"z22-close-{n:03d}", {
            "id": f"nt-z22-close-{n:03d}", "event_time": ts("2022-08-20", "10:00:00"),
            "kind": "close_contact", "person": f"z22-close-{n:03d}", "area": "140502",
            "case_ref": "Z22 8·17",
        }))
        out.append(record("checkpoint.contact-notices", f"z22-secondary-{n:03d}", {
            "id": f"nt-z22-secondary-{n:03d}", "event_time": ts("2022-08-20", "11:00:00"),
            "kind": "secondary_contact", "person": f"z22-secondary-{n:03d}", "area": "140502",
            "case_ref": "Z22 8·17",
        }))
    return out


def pingyao() -> list[dict[str, Any]]:
    """Pingyao, 8·19: two 20:1 pooled tubes positive, all 40 members red at once."""
    out = []
    for tube in (1, 2):
        members = []
        for n in range(1, 21):
            person = f"pingyao-t{tube}-{n:02d}"
            sample = f"S-PY-{tube}-{n:02d}"
            members.append({"person": person, "sample": sample})
            out.append(scan("highway", f"hw-py-{tube}-{n:02d}", person,
                            ts("2022-08-18", f"{8 + tube:02d}:{n:02d}:00"), ("PY-EXIT", "140728"),
                            [("140728", "2022-08-18")], sample=sample,
                            three_codes={"health_code": "green", "itinerary_star": False,
                                         "vaccination_doses": 3}))
        out.append(record("checkpoint.pcr-results", f"TUBE-PY-{tube}", {
            "id": f"rs-py-tube-{tube}", "event_time": ts("2022-08-19", f"1{tube}:00:00"),
            "kind": "pooled", "tube": f"TUBE-PY-{tube}", "collected_at": ts("2022-08-18", "12:00:00"),
            "result": "positive", "members": members, "lab_area": "140728",
        }))
    return out


def taiyuan_0820() -> list[dict[str, Any]]:
    """Taiyuan 8·20 rules: Tibet, Hainan (blue mark), medium, high, and an ordinary arrival."""
    out = [
        area("ra-460204-0806", "460204", "high", ts("2022-08-06", "12:00:00"), "Sanya 2022-08-06", "三亚市天涯区"),
        area("ra-610113-0815", "610113", "medium", ts("2022-08-15", "18:00:00"), "Xi'an 2022-08-15", "西安市雁塔区"),
    ]
    station = ("TY-SOUTH", "140105")
    travellers = [
        ("ty-tibet-traveller", [("540102", "2022-08-18")], "flight", "TV9833"),
        ("ty-hainan-traveller", [("460202", "2022-08-19")], "flight", "HU7369"),
        ("ty-medium-traveller", [("610113", "2022-08-19")], "train", "D2502"),
        ("ty-high-traveller", [("460204", "2022-08-18")], "flight", "HU7370"),
        ("ty-beijing-traveller", [("110105", "2022-08-20")], "train", "G601"),
    ]
    for i, (person, travel, mode, number) in enumerate(travellers, start=1):
        out.append(scan("station", f"st-ty0820-{i}", person, ts("2022-08-21", f"1{i}:00:00"),
                        station, travel,
                        trip={"mode": mode, "number": number, "date": "2022-08-21"},
                        destination="140105", sample=f"S-TY0820-{i}"))
    return out


def yellow_tests() -> list[dict[str, Any]]:
    """Taiyuan 3·28 yellow: released after 2 negatives within 72 h of the landing test;
    a second traveller's second test falls outside the window, so no release."""
    out = [area("ra-610113-0401", "610113", "medium", ts("2022-04-01", "00:00:00"),
                "Xi'an 2022-04-01", "西安市雁塔区")]
    for person, second in (("yellow-in-window", "2022-04-12"), ("yellow-late-test", "2022-04-14")):
        out.append(scan("station", f"st-{person}", person, ts("2022-04-10", "10:00:00"),
                        TAIYUAN_STATION, [("610112", "2022-04-08")],
                        trip={"mode": "train", "number": "D2506", "date": "2022-04-10"},
                        destination="140105", sample=f"S-{person}-0"))
        out.append(result(f"rs-{person}-1", person, f"S-{person}-1", ts("2022-04-11", "09:00:00"),
                          ts("2022-04-11", "18:00:00"), "negative"))
        out.append(result(f"rs-{person}-2", person, f"S-{person}-2", ts(second, "11:00:00"),
                          ts(second, "18:00:00"), "negative"))
    return out


def shanxi_missed_test() -> list[dict[str, Any]]:
    """Shanxi 8·20 medium-risk traveller: misses day 4, tests on day 5, released on day 7."""
    person = "sx-medium-missed"
    out = [
        area("ra-610113-0815", "610113", "medium", ts("2022-08-15", "18:00:00"), "Xi'an 2022-08-15", "西安市雁塔区"),
        scan("highway", "hw-sx-missed", person, ts("2022-08-21", "10:00:00"), ("YC-EXIT", "140802"),
             [("610113", "2022-08-19")], trip={"mode": "car", "number": "陕A12345", "date": "2022-08-21"},
             sample="S-SX-0", vehicle={"plate": "陕A12345"},
             three_codes={"health_code": "green", "itinerary_star": True, "vaccination_doses": 3}),
    ]
    for day, date, reported in ((1, "2022-08-22", "18:00:00"), (5, "2022-08-26", "18:00:00"),
                                (7, "2022-08-28", "15:00:00")):
        out.append(result(f"rs-sx-missed-d{day}", person, f"S-SX-{day}", ts(date, "09:00:00"),
                          ts(date, reported), "negative"))
    return out


def notice(kind: str, notice_id: str, person: str, when: str, area: str) -> dict[str, Any]:
    return record("checkpoint.contact-notices", person, {
        "id": notice_id, "event_time": when, "kind": kind, "person": person, "area": area})


def command(command_id: str, person: str, when: str, action: str, reason: str,
            **extra: Any) -> dict[str, Any]:
    return record("checkpoint.operator-commands", person, {
        "id": command_id, "event_time": when, "person": person, "operator": "op-yuncheng-07",
        "reason": reason, "action": action, **extra})


def life_of_a_control() -> list[dict[str, Any]]:
    """Issue 4 in one recording: release on time, contacts, positives, operators, three
    codes, blue mark. Replay with --until 2022-09-10T00:00:00+08:00 to see every release."""
    yuncheng, taiyuan = ("YC-EXIT", "140802"), ("TY-SOUTH", "140105")
    out = [
        area("ra-610113-0815", "610113", "medium", ts("2022-08-15", "18:00:00"), "Xi'an 2022-08-15", "西安市雁塔区"),
        # released on time: medium-risk traveller who takes every scheduled test
        scan("highway", "hw-life-ontime", "life-on-time", ts("2022-08-21", "10:00:00"), yuncheng,
             [("610113", "2022-08-19")], trip={"mode": "car", "number": "陕A00001", "date": "2022-08-21"}),
        # positive result: red, alert, holds release; operator needs an override
        scan("highway", "hw-life-positive", "life-positive", ts("2022-08-21", "11:00:00"), yuncheng,
             [("610113", "2022-08-19")], trip={"mode": "car", "number": "陕A00002", "date": "2022-08-21"}),
        # contacts and pushes
        notice("close_contact", "nt-life-close", "life-close", ts("2022-08-21", "12:00:00"), "140802"),
        notice("secondary_contact", "nt-life-secondary", "life-secondary", ts("2022-08-21", "12:05:00"), "140802"),
        notice("companion", "nt-life-companion", "life-companion", ts("2022-08-21", "12:10:00"), "140802"),
        notice("big_data_push", "nt-life-bigdata", "life-big-data", ts("2022-08-21", "12:15:00"), "140802"),
        # blue mark: Hainan traveller under Taiyuan 8·20 (taking the 3 tests)
        scan("station", "st-life-hainan", "life-hainan", ts("2022-08-21", "13:00:00"), taiyuan,
             [("460202", "2022-08-19")], trip={"mode": "flight", "number": "HU7369", "date": "2022-08-21"}),
        # three-code check: the close contact shows green at a highway exit; a star nobody explains
        scan("highway", "hw-life-close-exit", "life-close", ts("2022-08-21", "15:00:00"), yuncheng, [],
             three_codes={"health_code": "green", "itinerary_star": False, "vaccination_doses": 3}),
        scan("highway", "hw-life-star", "life-star", ts("2022-08-21", "15:30:00"), yuncheng,
             [("110105", "2022-08-20")],
             three_codes={"health_code": "green", "itinerary_star": True, "vaccination_doses": 2}),
        result("rs-life-positive", "life-positive", "S-LIFE-P1", ts("2022-08-22", "08:00:00"),
               ts("2022-08-22", "20:00:00"), "positive"),
        command("cmd-life-bigdata", "life-big-data", ts("2022-08-22", "09:00:00"), "reclassify",
                "checked: no stay in a risk area", rule="green"),
        command("cmd-life-extend", "life-close", ts("2022-08-23", "09:00:00"), "extend",
                "household member tested positive", days=3),
        command("cmd-life-release-1", "life-positive", ts("2022-08-30", "09:00:00"), "release",
                "retests negative"),
        command("cmd-life-release-2", "life-positive", ts("2022-08-30", "09:30:00"), "release",
                "expert panel: false positive, retests negative", override=True),
    ]
    for person, days in (("life-on-time", (1, 4, 7)), ("life-hainan", (1, 2, 3))):
        start = "2022-08-21"
        for day in days:
            stamp = f"2022-08-{21 + day:02d}"
            out.append(result(f"rs-{person}-d{day}", person, f"S-{person}-{day}",
                              ts(stamp, "08:00:00"), ts(stamp, "09:30:00"), "negative"))
        del start
    for day in (1, 2, 3, 5, 7, 8, 9, 10):  # the close contact's schedule, and days after
        stamp = f"2022-08-{21 + day:02d}"
        out.append(result(f"rs-life-close-d{day}", "life-close", f"S-close-{day}",
                          ts(stamp, "08:00:00"), ts(stamp, "09:30:00"), "negative"))
    for day in (1, 4, 7):
        stamp = f"2022-08-{21 + day:02d}"
        out.append(result(f"rs-life-secondary-d{day}", "life-secondary", f"S-sec-{day}",
                          ts(stamp, "08:00:00"), ts(stamp, "09:30:00"), "negative"))
    return out


if __name__ == "__main__":
    write("z22", z22())
    write("pingyao", pingyao())
    write("taiyuan-0820", taiyuan_0820())
    write("yellow-tests", yellow_tests())
    write("shanxi-missed-test", shanxi_missed_test())
    write("life-of-a-control", life_of_a_control())

"""The pipeline core (streams/pipeline): one input in, everything that follows out, the
same for the replay and the live worker."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from streams import codec
from streams.engine import load_policy_dir
from streams.partitioning import key_partition
from streams.pipeline import CoreConfig, Message, Pipeline
from streams.replay import Record, Replay, dump_jsonl
from tests.builders import area_update, scan

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = REPO / "tests" / "scenarios"
STATION = "checkpoint.scans.station"
BOOK = load_policy_dir()


def message(value: dict, *, partition: int | None = None, offset: int = 0, key: bytes | None = None,
            headers: tuple = (), topic: str = STATION) -> Message:
    return Message(topic, orjson.dumps(value), key, headers, partition, offset)


def live_core() -> Pipeline:
    return Pipeline(BOOK, config=CoreConfig(partitions=4))


# ------------------------------------------------------------------------- the gate
ID = "110101199003077777"
XIAN_SCAN = scan("p-gate-01", "2022-08-21T10:00:00", "140105", [("610113", "2022-08-19")])


@pytest.mark.parametrize("where", ["key", "header name", "header value", "value"])
def test_an_identity_number_anywhere_in_a_message_is_a_dead_letter_without_it(where):
    value = {**XIAN_SCAN, "note": ID} if where == "value" else XIAN_SCAN
    key = ID.encode() if where == "key" else b"p-gate-01"
    headers = {"header name": ((ID, b"x"),), "header value": (("scanner", ID.encode()),)}.get(where, ())
    routed = Pipeline(BOOK).route(message(value, key=key, headers=headers), 0)
    assert routed.status == "dead_letter" and routed.reason == "raw_identity_number"
    [letter] = routed.outputs
    assert letter.value["original"] is None and ID not in orjson.dumps(letter.value).decode()
    assert not routed.work


def test_a_large_original_is_kept_as_its_digest_and_a_prefix():
    raw = b"\xff not json " * 91_000  # ~1 MB of bytes that are not JSON
    routed = Pipeline(BOOK).route(Message(STATION, raw[:999_000], partition=0, offset=7), 0)
    [letter] = routed.outputs
    assert routed.reason == "malformed_json"
    encoded = orjson.dumps(letter.value)
    assert len(encoded) < 4_000, len(encoded)  # fits any broker, whatever came in
    assert letter.value["original_size"] == 999_000
    assert len(letter.value["original_sha256"]) == 64
    import base64

    assert base64.b64decode(letter.value["original"]) == raw[:1024]


# ---------------------------------------------------------------------- partitions
def test_an_input_on_a_partition_that_does_not_own_its_person_is_forwarded_there():
    core = live_core()
    owner = key_partition(b"p-gate-01", 4)
    elsewhere = (owner + 1) % 4
    routed = core.route(message(XIAN_SCAN, partition=elsewhere, offset=3), 0)
    assert routed.status == "forwarded" and not routed.work
    [forward] = routed.outputs
    assert (forward.topic, forward.partition, forward.key) == (
        "checkpoint.internal.person-work", owner, "p-gate-01")
    item = forward.value
    assert item["kind"] == "input" and item["source"] == {"topic": STATION, "partition": elsewhere,
                                                          "offset": 3}
    # the owner decides it as if it had arrived there
    there = core.route_item(Message("checkpoint.internal.person-work", orjson.dumps(item),
                                    partition=owner, offset=0), item)
    [work] = there.work
    assert (work.person, work.kind, work.value) == ("p-gate-01", "scan", XIAN_SCAN)
    on_owner = core.route(message(XIAN_SCAN, partition=owner), 0)
    assert on_owner.work and not on_owner.outputs


def test_what_an_input_forwards_to_is_known_before_it_is_decided():
    """The stream clock holds a record back only from the partitions it forwards to, and
    hands a plain relay on at once (streams/runtime/alignment.py)."""
    core = live_core()
    owner = key_partition(b"p-gate-01", 4)
    elsewhere = (owner + 1) % 4
    assert core.relays(message(XIAN_SCAN, partition=elsewhere), XIAN_SCAN)
    assert core.targets(message(XIAN_SCAN, partition=elsewhere), XIAN_SCAN) == (owner,)
    assert not core.relays(message(XIAN_SCAN, partition=owner), XIAN_SCAN)
    assert core.targets(message(XIAN_SCAN, partition=owner), XIAN_SCAN) == ()
    raised = area_update("610113", "high", "2022-08-22T08:00:00")
    on_two = message(raised, partition=2, topic="checkpoint.risk-areas")
    assert core.targets(on_two, raised) == (0, 1, 3) and not core.relays(on_two, raised)
    assert Pipeline(BOOK).targets(on_two, raised) == ()  # offline: one partition


def test_a_register_change_reaches_every_partition_in_order_and_a_raise_fans_out():
    core = live_core()
    raised = area_update("610113", "high", "2022-08-22T08:00:00")
    routed = core.route(message(raised, partition=2, topic="checkpoint.risk-areas"), 0)
    items = [o for o in routed.outputs if o.topic == "checkpoint.internal.person-work"]
    assert sorted(o.partition for o in items) == [0, 1, 3]  # partition 2 fans out here, now
    assert {o.value["kind"] for o in items} == {"reevaluate"}
    lowered = area_update("610113", "low", "2022-08-25T08:00:00")
    routed = core.route(message(lowered, partition=2, topic="checkpoint.risk-areas"), 0)
    assert {o.value["kind"] for o in routed.outputs} == {"register"}


# ------------------------------------------------------------------ error boundary
def test_an_exception_deciding_one_input_dead_letters_it_and_the_others_are_decided(monkeypatch):
    import streams.pipeline.core as core_module

    real = core_module.process

    def failing(state, person, kind, value, ctx):  # type: ignore[no-untyped-def]
        if value.get("id") == "scan-broken":
            raise KeyError("a bug, for this input only")
        return real(state, person, kind, value, ctx)

    monkeypatch.setattr(core_module, "process", failing)
    run = Replay()
    run.feed(Record.of("checkpoint.risk-areas", "610113",
                       area_update("610113", "medium", "2022-08-15T18:00:00"), 1))
    for n, person in enumerate(["p-before-01", "p-broken-01", "p-after-001"]):
        value = scan(person, f"2022-08-21T10:0{n}:00", "140802", [("610113", "2022-08-19")],
                     scan_id="scan-broken" if person == "p-broken-01" else None)
        run.feed(Record.of(STATION, person, value, n + 2))
    letters = [o["value"] for o in run.outputs if o["topic"] == "checkpoint.dead-letters"]
    assert [(d["reason"], d["input_id"]) for d in letters] == [("processing_error", "scan-broken")]
    assert "KeyError" in letters[0]["detail"]
    decided = {o["value"]["person"] for o in run.outputs if o["topic"] == "checkpoint.code-changes"}
    assert decided == {"p-before-01", "p-after-001"}
    assert "p-broken-01" not in run.states and run.tally.reconciles()
    assert run.tally.by_stream["station"]["dead_letter"] == 1


# ------------------------------------------------------------------- determinism
def _recordings(tmp_path: Path) -> list[Path]:
    from streams.engine.timeutil import parse_ts
    from streams.load import LoadConfig, generate

    load = tmp_path / "load.jsonl"
    records = generate(LoadConfig(seed=11, scans=10_000, end=parse_ts("2022-08-20T12:00:00+08:00")))
    load.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return [*sorted(SCENARIOS.glob("*.jsonl")), load]


def test_replay_is_the_same_bytes_under_any_hash_seed(tmp_path):
    """Every bundled scenario and a seeded 10,000-scan load, each replayed in five processes
    with different PYTHONHASHSEED values: one digest per recording."""
    files = _recordings(tmp_path)
    assert files[-1].read_bytes().count(b"\n") >= 10_000
    script = ("import hashlib, sys\n"
              "from streams.replay import dump_jsonl, replay_file\n"
              "for path in sys.argv[1:]:\n"
              "    print(hashlib.sha256(dump_jsonl(replay_file(path, until=10**13).outputs)).hexdigest())\n")
    digests = set()
    for seed in ("0", "1", "42", "1234", "random"):
        done = subprocess.run([sys.executable, "-c", script, *map(str, files)], cwd=REPO,
                              env={**os.environ, "PYTHONHASHSEED": seed}, capture_output=True,
                              text=True, check=True)
        digests.add(done.stdout)
    assert len(digests) == 1, "replay output depends on the hash seed"
    assert len(next(iter(digests)).split()) == len(files)


def test_a_live_core_decides_as_the_replay_when_fed_the_same_order():
    """The live shell's core, all partitions on one worker, taking inputs in the replay's
    order and handing forwards straight to their partitions, emits the replay's outputs."""
    path = SCENARIOS / "z22.jsonl"
    expected = Replay()
    from streams.replay import read_recording, replay_file

    want = dump_jsonl(replay_file(path).outputs)
    with open(path, "rb") as handle:
        records, _ = read_recording(handle)
    core, states, got = live_core(), {}, []
    for number, record in enumerate(records):
        moment = record.event_time
        msg = Message(record.topic, orjson.dumps(record.value), partition=number % 4, offset=number)
        pending = [core.route_value(msg, record.value, moment)]
        while pending:
            routed = pending.pop(0)
            for output in routed.outputs:
                if output.topic == "checkpoint.internal.person-work":
                    item = output.value
                    pending.append(core.route_item(
                        Message(output.topic, b"", partition=output.partition, offset=0), item))
                elif output.topic != "checkpoint.internal.exposures":
                    got.append(output)
            for work in routed.work:
                decision = core.decide(work, states.get(work.person), moment)
                states[work.person] = decision.state
                got.extend(decision.outputs)
    del expected
    comparable = sorted(orjson.dumps({"t": o.topic, "v": {k: v for k, v in o.value.items()
                                                        if k != "emitted_at"}},
                                     option=orjson.OPT_SORT_KEYS) for o in got)
    replayed = sorted(orjson.dumps({"t": r["topic"], "v": {k: v for k, v in r["value"].items()
                                                         if k != "emitted_at"}},
                                   option=orjson.OPT_SORT_KEYS)
                      for r in map(orjson.loads, want.splitlines()))
    assert comparable == replayed
    assert codec  # the gate is the core's (imported for the reader)

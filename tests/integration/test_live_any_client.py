"""Producers the project does not ship, on the real broker: kcat (librdkafka's CRC32
partitioner), a producer that picks partitions itself, and inputs no scanner should send.

The `person` field routes, not the Kafka key or the partition (issue 14): a scan that
lands on a partition that does not own its person is forwarded there before it is
decided, so a person has one control whatever partitioners the hub's scanners use.
"""

from __future__ import annotations

import shutil
import subprocess
import zlib
from collections import Counter

import orjson
from kafka import KafkaProducer

from streams.partitioning import key_partition
from tests.builders import area_update, scan
from tests.integration.test_live_behaviour import wait_split

STATION = "checkpoint.scans.station"
RISK = "checkpoint.risk-areas"
#: a well-formed resident ID number (check character valid), made up for the tests
RAW_ID = "11010519491231002X"


def crc32_partition(key: bytes, partitions: int = 4) -> int:
    """librdkafka's `consistent_random` for a non-empty key: CRC32 modulo partitions."""
    return zlib.crc32(key) % partitions


def foreign_persons(count: int) -> list[str]:
    """Persons whose CRC32 partition is not their murmur2 partition (the owner)."""
    found, n = [], 0
    while len(found) < count:
        n += 1
        person = f"p-any-client-{n:03d}"
        if crc32_partition(person.encode()) != key_partition(person.encode(), 4):
            found.append(person)
    return found


def kcat_produce(ns, topic: str, lines: list[tuple[str, bytes]]) -> None:
    """Keyed messages through kcat with its default (CRC32) partitioner."""
    kcat = shutil.which("kcat") or shutil.which("kafkacat")
    assert kcat, "kcat is needed (apt-get install kcat; .ci/run installs it)"
    payload = b"".join(key.encode() + b"\t" + value + b"\n" for key, value in lines)
    subprocess.run([kcat, "-P", "-b", ns.bootstrap, "-t", ns.topic(topic), "-K", "\t"],
                   input=payload, check=True, timeout=60)


def test_two_workers_decide_once_per_input_whatever_partition_a_scan_lands_on(ns, workers):
    """Given two workers and Xi'an high, When each of 12 persons is scanned first through
    kcat (CRC32: not the owner's partition) and then on a partition chosen by hand (not
    the owner's either), Then each person has one red `assign`, one control, and both
    workers answer `/persons/{p}`."""
    first, second = workers(name="a1"), workers(name="a2")
    wait_split(first, second)
    ns.produce([{"topic": RISK, "key": "610113",
                 "value": area_update("610113", "high", "2022-08-15T08:00:00")}])
    persons = foreign_persons(12)
    kcat_produce(ns, STATION, [
        (p, orjson.dumps(scan(p, "2022-08-21T10:00:00", "140105", [("610113", "2022-08-19")],
                              scan_id=f"sc-kcat-{p}")))
        for p in persons])
    producer = KafkaProducer(bootstrap_servers=ns.bootstrap)
    for p in persons:
        owner = key_partition(p.encode(), 4)
        value = scan(p, "2022-08-21T11:00:00", "140105", [("610113", "2022-08-19")],
                     scan_id=f"sc-by-hand-{p}")
        producer.send(ns.topic(STATION), key=p.encode(), value=orjson.dumps(value),
                      partition=(owner + 2) % 4)
    producer.flush()
    producer.close()
    ns.wait_idle(timeout=120)
    changes = [r["value"] for r in ns.read(["checkpoint.code-changes"])]
    by_id = {c["id"]: c for c in changes}  # at-least-once: copies share an id
    assigns = Counter(c["person"] for c in by_id.values() if c["kind"] == "assign")
    assert assigns == Counter({p: 1 for p in persons}), assigns
    controls = {p: {c["control"] for c in by_id.values() if c["person"] == p and c.get("control")}
                for p in persons}
    assert all(len(ids) == 1 for ids in controls.values()), controls
    decided = Counter(c["caused_by"][0] for c in by_id.values())
    assert all(decided[f"sc-kcat-{p}"] == 1 for p in persons), decided
    for worker in (first, second):
        for p in persons:
            status, body = worker.get(f"/persons/{p}")
            assert status == 200 and body["found"], (worker.port, p, status, body)
            assert body["status"]["code"] == "red", body


def test_bad_inputs_beside_valid_scans_on_one_partition_cost_them_nothing(ns, workers):
    """Given one partition carrying a valid scan, 1 MB of non-JSON, a valid scan and an
    oversized valid-JSON scan holding a raw ID number, Then both valid scans are decided,
    both bad inputs are dead-lettered, and the ID number is on no topic and in no log."""
    worker = workers()
    person, other = [f"p-one-part-{n}" for n in range(100)
                     if key_partition(f"p-one-part-{n}".encode(), 4) == 0][:2]
    good = [scan(who, f"2022-08-21T1{n}:00:00", "140105", [("310115", "2022-08-19")],
                 scan_id=f"sc-good-{n}") for n, who in ((0, person), (2, other))]
    noise = b"\xff\x00 not json " * 90_000  # over 1 MB, cut to 1,000,000 bytes
    big = scan(person, "2022-08-21T13:00:00", "140105", [], scan_id="sc-big-id",
               operator_note=f"holder {RAW_ID} " + "x" * 700_000)
    producer = KafkaProducer(bootstrap_servers=ns.bootstrap, max_request_size=2_000_000)
    for value in (orjson.dumps(good[0]), noise[:1_000_000], orjson.dumps(good[1]), orjson.dumps(big)):
        producer.send(ns.topic(STATION), key=person.encode(), value=value, partition=0)
    producer.flush()
    producer.close()
    ns.wait_idle(timeout=90)
    outputs = ns.read(["checkpoint.code-changes", "checkpoint.alerts", "checkpoint.dead-letters"])
    causes = {r["value"]["caused_by"][0] for r in outputs if r["topic"] == "checkpoint.code-changes"}
    assert {"sc-good-0", "sc-good-2"} <= causes, causes
    letters = {r["value"]["reason"]: r["value"] for r in outputs
               if r["topic"] == "checkpoint.dead-letters"}
    assert set(letters) == {"malformed_json", "raw_identity_number"}, letters
    assert letters["malformed_json"]["original_size"] == 1_000_000
    assert letters["raw_identity_number"]["original"] is None
    assert all(len(orjson.dumps(letter)) < 10_000 for letter in letters.values())
    everything = orjson.dumps([r["value"] for r in outputs]).decode()
    assert RAW_ID not in everything
    assert RAW_ID not in worker.log_path.read_text()
    assert worker.process is not None and worker.process.poll() is None


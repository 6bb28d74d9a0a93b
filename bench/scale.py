"""State at scale: N persons' states in the person table, then what a worker costs with them.

The states are the offline replay's, made from a seeded generated load (the same bytes a
worker writes: `streams.runtime.states.encode`), copied under new person ids of the same
length up to N persons, and written straight to the namespace's person changelog on the
person's partition (murmur2), as the workers' changelog writer puts them. Then one worker
(`rocksdb://`, wall clock):

- **takeover**: it starts with an empty disk and restores every row from the changelog,
  as a worker that takes partitions over on a new host does; seconds to `/ready`;
- **RSS** once ready (above an idle worker's, per million persons), and the bytes on
  disk (its RocksDB directory) per person;
- **restart**: stopped (SIGTERM) and started on the same disk; seconds to `/ready`;
- **kill -9**: killed and started on the same disk; seconds to `/ready`.

`python -m bench.scale --broker 127.0.0.1:42092 --persons 1000000` runs it alone (a
million persons: about 1.3 GB through the broker); `bench.run` runs it with 20,000 persons
(quick) or 100,000 (full).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from bench.run import _rss_mb, drop_namespace, log
from streams import topics as T
from streams.load import LoadConfig, generate
from streams.partitioning import key_partition
from streams.replay import Replay, load_policy_dir, read_recording
from streams.runtime.states import encode
from streams.settings import Settings
from tests.integration.harness import Namespace, Worker

#: person ids of the generated load are 17 characters; copies keep that length
ID_WIDTH = 17


def template_states(seed: int, scans: int = 20_000) -> list[tuple[str, bytes]]:
    """(person, stored state) of every person the replay of a generated load leaves."""
    records = list(generate(LoadConfig(seed=seed, scans=scans, end=int(time.time() * 1000))))
    parsed, _ = read_recording(orjson.dumps(r) for r in records)
    replay = Replay(load_policy_dir())
    replay.run(parsed)
    return [(person, encode(state)) for person, state in sorted(replay.states.items())
            if len(person) == ID_WIDTH]


def rows(templates: list[tuple[str, bytes]], persons: int) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) of `persons` person rows: the templates in turn under new ids."""
    for n in range(persons):
        person, raw = templates[n % len(templates)]
        new = f"scale{n:0{ID_WIDTH - 5}d}"
        yield new.encode(), raw.replace(orjson.dumps(person), orjson.dumps(new))


async def _write_changelog(ns: Namespace, templates: list[tuple[str, bytes]], persons: int,
                           partitions: int) -> dict[str, Any]:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=ns.bootstrap, linger_ms=20, acks=1,
                                max_batch_size=1024 * 1024, max_request_size=4 * 1024 * 1024,
                                compression_type=None)
    await producer.start()
    topic = ns.topic(T.PERSONS_CHANGELOG)
    sizes: list[int] = []
    pending: list[asyncio.Future[Any]] = []
    try:
        for key, value in rows(templates, persons):
            sizes.append(len(key) + len(value))
            pending.append(await producer.send(topic, value, key=key,
                                               partition=key_partition(key, partitions)))
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    ordered = sorted(sizes)
    return {"record_bytes_mean": round(statistics.fmean(sizes)),
            "record_bytes_p99": ordered[int(len(ordered) * 0.99)],
            "changelog_bytes": sum(sizes)}


def _du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _ready_after(worker: Worker, timeout: float) -> float:
    started = time.monotonic()
    worker.start(wait=False)
    worker.wait_ready(timeout=timeout)
    return time.monotonic() - started


def section_scale(broker: str, persons: int, log_dir: Path, seed: int) -> dict[str, Any]:
    """See the module docstring; returns every number it measured."""
    ns = Namespace(broker)
    partitions = Settings.from_env({}).partitions
    worker = Worker(ns, log_dir, clock="wall", name="scale",
                    env={"CHECKPOINT_STORE": "rocksdb://"})
    data_dir = Path(worker.env["CHECKPOINT_DATA_DIR"])
    timeout = max(300.0, persons / 500)
    try:
        worker.start()  # an idle worker first: its memory with no person at all
        idle = _rss_mb(worker)
        worker.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
        templates = template_states(seed)
        began = time.monotonic()
        written = asyncio.run(_write_changelog(ns, templates, persons, partitions))
        log(f"scale: {persons:,} person states written to the changelog in "
            f"{time.monotonic() - began:.1f} s ({written['record_bytes_mean']} B each)")
        takeover = _ready_after(worker, timeout)
        rss = _rss_mb(worker)
        log(f"scale: empty disk to ready in {takeover:.1f} s, RSS {rss:.0f} MB")
        worker.stop(timeout=120)
        disk = _du(data_dir)
        restart = _ready_after(worker, timeout)
        rss_restart = _rss_mb(worker)
        worker.kill()
        killed = _ready_after(worker, timeout)
        log(f"scale: restart {restart:.1f} s, after kill -9 {killed:.1f} s")
    finally:
        worker.stop()
        drop_namespace(ns)
    return {
        "persons": persons, "partitions": partitions, **written,
        "takeover_seconds": round(takeover, 1),
        "restore_records_per_second": round(persons / takeover) if takeover else None,
        "rss_mb_idle": round(idle, 1), "rss_mb": round(rss, 1),
        "rss_mb_after_restart": round(rss_restart, 1),
        "rss_mb_per_million_persons": round((rss - idle) / persons * 1e6),
        "disk_bytes_per_person": round(disk / persons),
        "restart_seconds": round(restart, 1), "kill9_restart_seconds": round(killed, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", default="127.0.0.1:9092")
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=2022)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        try:
            result = section_scale(args.broker, args.persons, Path(tmp), args.seed)
        except (RuntimeError, TimeoutError, subprocess.SubprocessError) as error:
            sys.stderr.write(f"scale: {error}\n")
            return 1
    if args.json:
        sys.stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        for name, value in result.items():
            print(f"{name:32} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

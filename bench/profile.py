"""Profile one worker draining a synthetic backlog, with py-spy (pip install py-spy).

    python -m bench.profile --broker 127.0.0.1:42092 --scans 5000 [--out /tmp/worker.txt]
    python -m bench.profile --broker 127.0.0.1:42092 --retro 20000   # an area raise instead
    python -m bench.profile --broker 127.0.0.1:42092 --scans 8000 --rate 800  # steady arrival

With `--retro N` the worker is first fed N recent visitors of one area, unprofiled, and
the samples cover only the retroactive raise of that area (the bench's `retro` section).

Samples only while the worker holds the GIL (`py-spy --gil`: CPU spent in Python, not time
spent waiting for the broker or for a core on a shared machine), writes the raw stacks
(flamegraph-ready) and prints the share of samples by where they were spent (CATEGORIES):
logs, metrics, encoding, the input gate, the engine, state, the producer, the consumer,
commits, the shell's own bookkeeping, Faust's stream machinery. `python -m bench.run`'s
`budget` section turns those shares into µs of CPU a record.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.run import (
    Probe,
    _cpu_seconds,
    drop_namespace,
    now_ms,
    paced_producer,
    preload,
    raise_and_wait,
)
from streams.load import LoadConfig, generate, visitors
from tests.integration.harness import Namespace, Worker

#: a sample counts under the first category one of whose patterns (regular expressions over
#: py-spy's frames, "function (path:line)") its stack holds: the work itself first, then
#: the worker's shell (`live.py`, `runtime/`: an ancestor of most of that work), then
#: Faust's stream machinery (an ancestor of the shell)
CATEGORIES: list[tuple[str, list[str]]] = [
    ("logs", [r"logging/__init__", r"observability\.py", r"outputlog\.py"]),
    ("metrics", [r"prometheus_client", r"faust/sensors", r"streams/metrics\.py"]),
    ("encoding (outputs, dead letters)", [r"\bencode \(\S*codec\.py", r"\bto_json \(",
                                          r"dead_letter \(\S*codec\.py"]),
    ("input gate", [r"codec\.py", r"fastcheck\.py"]),
    ("engine and pipeline core", [r"streams/engine/", r"streams/pipeline/", r"streams/reports\.py"]),
    ("state (decode, encode, store)", [r"runtime/states\.py", r"runtime/changelog\.py",
                                       r"faust/tables/", r"faust/stores/", r"rocksdict"]),
    ("outputs (producer)", [r"aiokafka/producer", r"runtime/batches\.py",
                            r"faust/transport/producer", r"Producer\.send"]),
    ("consumer fetch", [r"Fetcher", r"ConsumerThread", r"aiokafka/consumer", r"_drain_messages"]),
    ("offset commits", [r"Consumer\.commit", r"Consumer\._commit", r"_commit_offsets"]),
    ("shell bookkeeping", [r"streams/live\.py", r"streams/runtime/", r"streams/agents\.py",
                           r"streams/timers\.py"]),
    ("Faust stream/agent", [r"faust/streams\.py", r"faust/agents", r"faust/transport/conductor"]),
]
_PATTERNS = [(name, re.compile("|".join(patterns))) for name, patterns in CATEGORIES]


def categorise(path: Path) -> list[tuple[str, float]]:
    counts: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        total += int(n)
        name = next((c for c, pattern in _PATTERNS if pattern.search(stack)),
                    "event loop and other")
        counts[name] += int(n)
    return [(name, count / max(total, 1)) for name, count in counts.most_common()]


def paced(ns: Namespace, seed: int, scans: int, rate: float) -> None:
    """`scans` scans sent by a producer process at `rate` a second, at their event times."""
    subprocess.run(paced_producer(ns, seed, scans, rate), check=True, stdout=subprocess.DEVNULL)


def profile(broker: str, *, scans: int = 5000, seed: int = 2022, retro: int | None = None,
            rate: float | None = None, clock: str = "wall",
            out: Path = Path("/tmp/worker-profile.txt")) -> dict[str, Any]:
    """One worker under py-spy: a backlog of `scans` (or `scans` at `rate` a second, or the
    raise of `retro` visitors). Returns what was done, its CPU and the share of samples
    by category; raises when py-spy is missing."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        raise RuntimeError("py-spy not found: pip install py-spy")
    ns = Namespace(broker)
    area = "610113"
    records = (list(visitors(retro, area, seed=seed, end=now_ms())) if retro
               else list(generate(LoadConfig(seed=seed, scans=scans, end=now_ms()))))
    worker = Worker(ns, Path("/tmp"), clock=clock, name="profile")
    probe = Probe(ns)
    try:
        worker.start()
        assert worker.process is not None
        if retro:
            preload(ns, records)
            probe.wait_idle(timeout=max(300.0, retro / 100))
        sampler = subprocess.Popen([spy, "record", "-p", str(worker.process.pid), "-r", "200",
                                    "--format", "raw", "-o", str(out), "--nonblocking", "--gil"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.5)
        started = time.monotonic()
        cpu_before = _cpu_seconds(worker)
        if retro:
            run = asyncio.run(raise_and_wait(ns, area, retro, f"profile-up-{area}",
                                              timeout=max(120.0, retro / 200)))
            done, what = run["reevaluated"], "visitors re-evaluated"
        elif rate:
            paced(ns, seed, scans, rate)
            probe.wait_idle(timeout=900, poll=0.5)
            done, what = scans, f"scans at {rate:,.0f}/s"
        else:
            preload(ns, records)
            probe.wait_idle(timeout=900, poll=0.5)
            done, what = len(records), "records drained"
        seconds = time.monotonic() - started
        cpu = _cpu_seconds(worker) - cpu_before
        sampler.send_signal(2)
        sampler.wait(60)
    finally:
        probe.close()
        worker.stop()
        drop_namespace(ns)
    return {"done": done, "what": what, "seconds": seconds, "cpu_seconds": cpu,
            "cpu_us_each": cpu / done * 1e6, "shares": dict(categorise(out)), "stacks": str(out)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", default="127.0.0.1:9092")
    parser.add_argument("--scans", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=2022)
    parser.add_argument("--retro", type=int, metavar="N",
                        help="profile the re-evaluation of N visitors after an area raise")
    parser.add_argument("--rate", type=float, metavar="SCANS_PER_S",
                        help="profile steady arrival instead of a backlog: --scans sent by a "
                             "paced producer process at this rate, at their event times")
    parser.add_argument("--clock", choices=["wall", "stream"], default="wall",
                        help="the worker's CHECKPOINT_CLOCK (wall: production)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/worker-profile.txt"))
    args = parser.parse_args(argv)
    try:
        run = profile(args.broker, scans=args.scans, seed=args.seed, retro=args.retro,
                      rate=args.rate, clock=args.clock, out=args.out)
    except RuntimeError as error:
        sys.stderr.write(f"{error}\n")
        return 1
    print(f"{run['done']:,} {run['what']} in {run['seconds']:.1f} s "
          f"({run['done'] / run['seconds']:,.0f}/s); worker CPU {run['cpu_seconds']:.1f} s "
          f"({run['cpu_us_each']:,.0f} µs each, py-spy's sampling included); "
          f"stacks in {run['stacks']}")
    for name, share in run["shares"].items():
        print(f"{share:6.1%}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Profile one worker draining a synthetic backlog, with py-spy (pip install py-spy).

    python -m bench.profile --broker 127.0.0.1:42092 --scans 5000 [--out /tmp/worker.txt]
    python -m bench.profile --broker 127.0.0.1:42092 --retro 20000   # an area raise instead
    python -m bench.profile --broker 127.0.0.1:42092 --scans 8000 --rate 800  # steady arrival

With `--retro N` the worker is first fed N recent visitors of one area, unprofiled, and
the samples cover only the retroactive raise of that area (the bench's `retro` section).

Samples only while the worker holds the GIL (`py-spy --gil`: CPU spent in Python, not time
spent waiting for the broker or for a core on a shared machine), writes the raw stacks
(flamegraph-ready) and prints the share of samples by where they were spent: the input
gate, the engine, the app's sends, Faust's stream machinery, aiokafka, logging, metrics.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import shutil
import subprocess
import sys
import time
from pathlib import Path

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

#: first match wins, in this order
CATEGORIES = [
    ("logging", ["logging/__init__", "observability.py"]),
    ("prometheus metrics", ["prometheus_client"]),
    ("input gate (decode/check)", ["codec.py"]),
    ("engine process()", ["evaluate.py:"]),
    ("state decode", ["load_state", "from_json"]),
    ("table set/get (changelog)", ["__setitem__", "faust/tables/", "faust/stores/"]),
    ("app sends", ["_send (streams/app.py", "_emit (streams", "Topic.send", "publish_message"]),
    ("aiokafka producer", ["aiokafka/producer"]),
    ("consumer fetch (thread)", ["Fetcher", "ConsumerThread", "aiokafka/consumer", "_drain_messages"]),
    ("commit", ["commit"]),
    ("faust stream/agent", ["faust/streams.py", "faust/agents", "faust/transport/conductor"]),
]


def categorise(path: Path) -> list[tuple[str, float]]:
    counts: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        total += int(n)
        name = next((c for c, keys in CATEGORIES if any(k in stack for k in keys)),
                    "event loop and other")
        counts[name] += int(n)
    return [(name, count / max(total, 1)) for name, count in counts.most_common()]


def paced(ns: Namespace, seed: int, scans: int, rate: float) -> None:
    """`scans` scans sent by a producer process at `rate` a second, at their event times."""
    subprocess.run(paced_producer(ns, seed, scans, rate), check=True, stdout=subprocess.DEVNULL)


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
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        sys.stderr.write("py-spy not found: pip install py-spy\n")
        return 1
    ns = Namespace(args.broker)
    area = "610113"
    records = (list(visitors(args.retro, area, seed=args.seed, end=now_ms())) if args.retro
               else list(generate(LoadConfig(seed=args.seed, scans=args.scans, end=now_ms()))))
    worker = Worker(ns, Path("/tmp"), clock=args.clock, name="profile")
    probe = Probe(ns)
    try:
        worker.start()
        assert worker.process is not None
        if args.retro:
            preload(ns, records)
            probe.wait_idle(timeout=max(300.0, args.retro / 100))
        sampler = subprocess.Popen([spy, "record", "-p", str(worker.process.pid), "-r", "200",
                                    "--format", "raw", "-o", str(args.out), "--nonblocking", "--gil"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.5)
        started = time.monotonic()
        cpu_before = _cpu_seconds(worker)
        if args.retro:
            run = asyncio.run(raise_and_wait(ns, area, args.retro, f"profile-up-{area}",
                                              timeout=max(120.0, args.retro / 200)))
            done, what = run["reevaluated"], "visitors re-evaluated"
        elif args.rate:
            paced(ns, args.seed, args.scans, args.rate)
            probe.wait_idle(timeout=900, poll=0.5)
            done, what = args.scans, f"scans at {args.rate:,.0f}/s"
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
    print(f"{done:,} {what} in {seconds:.1f} s ({done / seconds:,.0f}/s); worker CPU "
          f"{cpu:.1f} s ({cpu / done * 1e6:,.0f} µs each, py-spy's sampling included); "
          f"stacks in {args.out}")
    for name, share in categorise(args.out):
        print(f"{share:6.1%}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

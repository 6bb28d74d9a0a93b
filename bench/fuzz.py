"""Fuzz campaign (`make fuzz`, outside CI): a million hostile inputs through the gate and
the pipeline core.

Inputs are real records (a generated recording of every kind of input) mutated at
random: fields dropped or retyped, bytes truncated, flipped or appended, values blown up,
ID numbers put in every field, in the key and in a header, random bytes. Each goes
through `Pipeline.route` on a four-partition core (as a live worker would, on a random
partition: forwards are followed to their owner) and every unit of work it makes through
`Pipeline.decide`. The campaign fails on any exception (the core must not raise: a bad
input is a dead letter, an engine failure a `processing_error` dead letter) and on any
input not accounted for as decided, forwarded-and-decided or dead-lettered.

    python -m bench.fuzz --inputs 1000000 --workers 2
"""

from __future__ import annotations

import argparse
import copy
import random
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import orjson

from streams.engine import load_policy_dir
from streams.pipeline import CoreConfig, Message, Pipeline
from streams.topics import PERSON_WORK

RAW_ID = "11010519491231002X"
JUNK: list[Any] = [None, True, -1, 2**63 - 1, 1e308, "", "x" * 5000, [], {}, [1, 2], {"a": {"b": []}},
                   "2022-13-45T99:99:99+08:00", "\u0000", "\ud7ff" * 10, RAW_ID]


def _mutate(rng: random.Random, record: dict[str, Any]) -> tuple[bytes, bytes | None, tuple]:
    """One hostile (value bytes, key, headers) from a valid record."""
    value = orjson.loads(orjson.dumps(record["value"]))
    key = (record.get("key") or "").encode() or None
    headers: tuple = ()
    for _ in range(rng.randint(0, 3)):
        roll = rng.random()
        fields = list(value) if isinstance(value, dict) else []
        if roll < 0.25 and fields:
            del value[rng.choice(fields)]
        elif roll < 0.5 and fields:
            value[rng.choice(fields)] = copy.deepcopy(rng.choice(JUNK))
        elif roll < 0.6 and fields:
            value[rng.choice(fields)] = f"holder {RAW_ID}"
        elif roll < 0.65:
            key = RAW_ID.encode()
        elif roll < 0.7:
            headers = (("scanner", rng.choice([RAW_ID.encode(), b"fw-1.2"])),)
        elif roll < 0.75:
            value = copy.deepcopy(rng.choice(JUNK))  # mutated later: never the shared one
        elif roll < 0.8 and isinstance(value, dict):
            value["padding"] = "y" * rng.choice((10, 70_000, 400_000))
    raw = orjson.dumps(value)
    roll = rng.random()
    if roll < 0.1:
        raw = raw[: rng.randrange(len(raw) + 1)]
    elif roll < 0.15:
        cut = rng.randrange(len(raw) + 1)
        raw = raw[:cut] + bytes([rng.randrange(256)]) + raw[cut + 1:]
    elif roll < 0.18:
        raw = rng.randbytes(rng.randrange(1, 2000))
    return raw, key, headers


def campaign(seed: int, inputs: int) -> Counter[str]:
    from tests.integration.recordings import Plan, expand

    rng = random.Random(seed)
    base = expand(Plan(seed=seed, records=4000, persons=600, raises=10, results=0.2,
                       notices=0.06, commands=0.04, duplicates=0.0))
    core = Pipeline(load_policy_dir(), config=CoreConfig(partitions=4))
    states: dict[str, Any] = {}
    tally: Counter[str] = Counter()
    clock = 1_660_000_000_000
    for number in range(inputs):
        record = base[number % len(base)] if rng.random() < 0.3 else rng.choice(base)
        raw, key, headers = _mutate(rng, record) if rng.random() < 0.8 else (
            orjson.dumps(record["value"]), None, ())
        clock += 1000
        message = Message(record["topic"], raw, key, headers, rng.randrange(4), number)
        routed = core.route(message, clock)
        tally["inputs"] += 1
        if routed.status == "dead_letter":
            tally["dead_letter"] += 1
            tally[f"reason:{routed.reason}"] += 1
            continue
        works = list(routed.work)
        forwards = [o for o in routed.outputs if o.topic == PERSON_WORK]
        for forward in forwards:
            item = Message(PERSON_WORK, b"", None, (), forward.partition, number)
            works.extend(core.route_item(item, forward.value).work)
        for work in works:
            decision = core.decide(work, states.get(work.person), clock)
            if decision.error is not None:
                tally["processing_error"] += 1
            if decision.state is not None:
                states[work.person] = decision.state
        tally["forwarded" if routed.status == "forwarded" else "decided"] += 1
        if len(states) > 50_000:
            states.clear()
    return tally


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    started = time.monotonic()
    share = args.inputs // args.workers
    with ProcessPoolExecutor(args.workers) as pool:
        parts = list(pool.map(campaign, [args.seed + n for n in range(args.workers)],
                              [share] * args.workers))
    total: Counter[str] = sum(parts, Counter())
    accounted = total["dead_letter"] + total["decided"] + total["forwarded"]
    print(f"fuzz: {total['inputs']:,} inputs in {time.monotonic() - started:.0f} s; "
          f"decided {total['decided']:,}, forwarded and decided {total['forwarded']:,}, "
          f"dead-lettered {total['dead_letter']:,}, processing errors "
          f"{total['processing_error']:,}; crashes 0; accounted {accounted:,}")
    for reason, count in sorted((k, v) for k, v in total.items() if k.startswith("reason:")):
        print(f"  {reason[7:]}: {count:,}")
    if accounted != total["inputs"] or total["processing_error"]:
        raise SystemExit("fuzz: not every input accounted for, or the engine failed")


if __name__ == "__main__":
    main()

"""The worker's agents: one for its partitions' inputs, one for report parts, and the
register feed. They move data; the live shell (`streams.live`) and the pipeline core
decide what it becomes."""

from __future__ import annotations

import gc
import logging
import os
from typing import Any

import orjson

from . import areas, fastcheck
from . import topics as T
from .app import app, live, partition_inputs, persons, report_counts, report_parts, settings
from .pipeline import Output
from .reports import report_from_counts, sum_parts

log = logging.getLogger("checkpoint_streams")

#: the worker's exit status when the shell itself failed (not an input: those are
#: dead-lettered): its inputs are not acknowledged and are read again after a restart
EXIT_SHELL_ERROR = 71


@app.agent(partition_inputs, name="checkpoint_streams.partitions")
async def partitions(stream: Any) -> None:
    """Partition p of every input topic and of the person-work topic: the live shell."""
    await live.feed.ready.wait()
    # warm the gate before the first event: the compiled schemas and the division table
    # load on first use, which would otherwise land on the first inputs' latency
    for name in T.INPUT_SCHEMAS.values():
        fastcheck.available(name)
    areas.is_known("14")
    # everything loaded so far lives as long as the worker: keep it out of the cyclic
    # collector, whose full passes over it took 100-160 ms (the p99 latency) on the bench
    gc.freeze()
    live.agents["partitions"] = True
    try:
        async for events in stream.noack_take(settings.batch_size, within=settings.batch_within):
            await live.handle(stream, events)
    except Exception as exc:  # a bug in the shell: restarting the agent would skip inputs
        log.critical("partition agent failed: exiting so that its inputs are read again",
                     extra={"error": repr(exc), "exit_status": EXIT_SHELL_ERROR}, exc_info=True)
        logging.shutdown()
        os._exit(EXIT_SHELL_ERROR)
    finally:
        live.agents["partitions"] = False


@app.agent(report_parts, name="checkpoint_streams.report_parts")
async def report_part_agent(stream: Any) -> None:
    """Each partition's counts of an area and day meet on the owner of `area:date`."""
    live.agents["report_parts"] = True
    try:
        async for event in stream.events():
            report = file_part(orjson.loads(event.message.value))
            if report is not None:
                await live.send([report])
    except Exception as exc:  # Faust's supervisor starts the agent again; /ready tells
        live.agent_crashed("report_parts", exc)
        raise
    finally:
        live.agents["report_parts"] = False


def file_part(part: dict[str, Any]) -> Output | None:
    """Keep a partition's part (it replaces that partition's earlier one); once every
    partition closed the day, the report is their sum: filed then, and filed again if a
    late part changes it. The row: {"parts": {partition: counts}, "final": [partitions],
    "filed": the counts last filed}."""
    key = f"{part['area']}:{part['date']}"
    raw = report_counts.get(key.encode())
    row = orjson.loads(raw) if raw else {"parts": {}, "final": [], "filed": None}
    row["parts"][str(part["partition"])] = part["counts"]
    if part.get("final") and part["partition"] not in row["final"]:
        row["final"] = sorted([*row["final"], part["partition"]])
    report = None
    if len(row["final"]) >= settings.partitions:
        counts = sum_parts(row["parts"].values())
        if counts != row["filed"]:
            row["filed"] = counts
            report = Output(T.REPORTS, key, report_from_counts(key, counts, live.clock()))
    report_counts[key.encode()] = orjson.dumps(row)
    return report


@app.task
async def register_feed() -> None:
    """Build the whole register on this worker from the compacted topics, then follow them."""
    await live.feed.run(lambda: bool(app.should_stop))


@persons.on_recover
async def partitions_recovered() -> None:
    """After every rebalance, once the person table is recovered: the owned partitions'
    indexes, due times and counts, from their rows."""
    await live.recovered()


@app.on_partitions_revoked.connect  # type: ignore[arg-type]  # mode's stub wants a union of callables
async def partitions_revoked(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
    """Partitions moving away: what was decided for them is written before the new owner
    reads their changelog."""
    revoked = args[0] if args else kwargs.get("revoked", ())
    topic = settings.topic(T.STATION_SCANS)
    await live.revoked({tp.partition for tp in revoked if tp.topic == topic})

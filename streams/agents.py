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
from .app import app, live, partition_inputs, report_counts, report_parts, settings
from .engine.timeutil import parse_date
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
    """Each partition's counts of an area and day meet on the owner of `area:date`; a part
    replaces its partition's earlier one. A report already filed is filed again, corrected."""
    live.agents["report_parts"] = True
    try:
        await _merge_parts(stream)
    finally:
        live.agents["report_parts"] = False


async def _merge_parts(stream: Any) -> None:
    async for event in stream.events():
        part = orjson.loads(event.message.value)
        key = f"{part['area']}:{part['date']}".encode()
        raw = report_counts.get(key)
        row = orjson.loads(raw) if raw else {"parts": {}}
        row["parts"][str(part["partition"])] = part["counts"]
        report_counts[key] = orjson.dumps(row)
        if live.filed_through is not None and parse_date(part["date"]) <= live.filed_through:
            report = report_from_counts(key.decode(), sum_parts(row["parts"].values()),
                                        live.clock())
            await live.send([Output(T.REPORTS, key.decode(), report)])


@app.task
async def register_feed() -> None:
    """Build the whole register on this worker from the compacted topics, then follow them."""
    await live.feed.run(lambda: bool(app.should_stop))

"""The worker's web views: health, readiness, the register, one person's status.

The server listens on `CHECKPOINT_WEB_BIND` (loopback by default: a person's code is
personal data) and advertises `CHECKPOINT_WEB_HOST`, where other workers forward a look-up
of a person whose partition they do not own.
"""

from __future__ import annotations

from typing import Any

from .app import app, live, persons
from .engine.timeutil import format_ts
from .live import now_ms
from .status import person_status


@app.page("/health")
async def health(web: Any, request: Any) -> Any:
    """Alive: the process answers (a supervisor restarts it otherwise)."""
    return web.json({"status": "ok"})


@app.page("/ready")
async def ready(web: Any, request: Any) -> Any:
    """Ready to decide: the register caught up, partitions assigned and no rebalance under
    way, the person table not recovering, and the agents running (an agent that crashed
    is not ready while Faust restarts it, nor for `CHECKPOINT_READY_HOLD_AFTER_CRASH`
    seconds after)."""
    partitions = sorted(live.assigned())
    down = live.agents_down()
    problems = []
    if not live.feed.ready.is_set():
        problems.append("register not caught up")
    if not partitions:
        problems.append("no partitions assigned")
    if app.rebalancing:
        problems.append("partitions being reassigned (rebalance)")
    if live.recovering or app.in_recovery:
        problems.append("person table recovering")
    if down:
        problems.append("agents down: " + ", ".join(down))
    return web.json({"ready": not problems, "register_areas": len(live.core.register),
                     "partitions": partitions, "agents": dict(sorted(live.agents.items())),
                     "problems": problems},
                    status=200 if not problems else 503)


@app.page("/areas")
async def areas_view(web: Any, request: Any) -> Any:
    return web.json({"at": format_ts(now_ms()), "areas": live.core.register.snapshot(now_ms())})


@app.page("/persons/{person}")
@app.table_route(table=persons, match_info="person")
async def person_view(web: Any, request: Any, person: str) -> Any:
    state = live.states.get(person)
    if state is None:
        return web.json({"person": person, "found": False}, status=404)
    return web.json({"found": True, **state.to_json(),
                     "status": person_status(state, live.clock())})

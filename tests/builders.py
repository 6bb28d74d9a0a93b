"""Small builders so that tests read like the scenario they pin."""

from __future__ import annotations

from typing import Any

from streams.engine import Context, PersonState, Register, load_policy_dir, process
from streams.engine.timeutil import parse_ts

POLICIES = load_policy_dir()


def t(text: str) -> int:
    return parse_ts(text if "+" in text else text + "+08:00")


def stamp(when: str) -> str:
    if "T" not in when:
        when += "T00:00:00"
    return when if "+" in when else when + "+08:00"


def area_update(code: str, level: str, when: str, update_id: str | None = None) -> dict[str, Any]:
    stamp_ = stamp(when)
    return {"id": update_id or f"ra-{code}-{level}-{when[:10]}", "area": code, "level": level,
            "effective_at": stamp_, "event_time": stamp_}


def register(*updates: dict[str, Any]) -> Register:
    reg = Register()
    for update in updates:
        reg.apply_update(update)
    return reg


def scan(person: str, when: str, checkpoint_area: str, travel: list[tuple[str, str]],
         *, kind: str = "station", scan_id: str | None = None, **extra: Any) -> dict[str, Any]:
    stamp = when if "+" in when else when + "+08:00"
    return {"id": scan_id or f"scan-{person}-{when}", "person": person, "event_time": stamp,
            "checkpoint": {"id": "CP-1", "kind": kind, "area": checkpoint_area},
            "travel": [{"area": a, "date": d} for a, d in travel], **extra}


def result(person: str, collected: str, reported: str, outcome: str = "negative",
           result_id: str | None = None) -> dict[str, Any]:
    return {"id": result_id or f"rs-{person}-{collected}", "kind": "single", "person": person,
            "sample": f"S-{collected}", "collected_at": collected + "+08:00",
            "event_time": reported + "+08:00", "result": outcome}


class Person:
    """One person's state driven through the engine, collecting what it emits."""

    def __init__(self, reg: Register | None = None, name: str = "person-0001") -> None:
        self.register = reg or Register()
        self.name = name
        self.state: PersonState | None = None
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.status = ""

    def send(self, kind: str, value: dict[str, Any], now: str | None = None) -> list[dict[str, Any]]:
        """Decide one input; a raise (`reevaluate`) or an exposed trip (`exposure`) goes into
        the register first, as the pipeline does before fanning it out."""
        if kind == "reevaluate":
            self.register.apply_update(value)
        elif kind == "exposure":
            self.register.apply_exposure(value)
        moment = t(now) if now else t(value["event_time"])
        outcome = process(self.state, self.name, kind, value,
                          Context(self.register, POLICIES, moment))
        self.state = outcome.state
        self.status = outcome.status
        self.events.extend(outcome.events)
        return [event for _, event in outcome.events]

    def tick(self, now: str) -> list[dict[str, Any]]:
        return self.send("tick", {}, now=now)

    def changes(self) -> list[dict[str, Any]]:
        return [e for k, e in self.events if k == "code_change"]

    def alerts(self) -> list[dict[str, Any]]:
        return [e for k, e in self.events if k == "alert"]

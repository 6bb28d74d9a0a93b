"""`make run` says in one line what to install when Java 17 or Maven is missing."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from streams import demo


def _java(monkeypatch: pytest.MonkeyPatch, version: str | None, mvn: bool) -> None:
    def which(name: str) -> str | None:
        if name == "java":
            return "/usr/bin/java" if version else None
        return "/usr/bin/mvn" if mvn else None

    monkeypatch.setattr(demo.shutil, "which", which)
    monkeypatch.setattr(demo.subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(
        a, 0, "", f'openjdk version "{version}" 2025-04-15\n'))


def test_nothing_missing(monkeypatch, tmp_path: Path):
    _java(monkeypatch, "17.0.15", mvn=True)
    assert demo.check_prerequisites(tmp_path) is None


def test_no_java(monkeypatch, tmp_path: Path):
    _java(monkeypatch, None, mvn=True)
    assert demo.check_prerequisites(tmp_path) == demo.INSTALL_HINT + " (no java found)"


def test_old_java(monkeypatch, tmp_path: Path):
    _java(monkeypatch, "1.8.0_392", mvn=True)
    assert demo.check_prerequisites(tmp_path).endswith("(found Java 8)")


def test_no_maven_matters_only_before_kafka_is_fetched(monkeypatch, tmp_path: Path):
    _java(monkeypatch, "21.0.2", mvn=False)
    assert "no mvn found" in demo.check_prerequisites(tmp_path)
    libs = tmp_path / "kafka-3.9.1" / "libs"
    libs.mkdir(parents=True)
    (libs / ".complete").touch()
    assert demo.check_prerequisites(tmp_path) is None

"""A real Prometheus (Debian's `prometheus` binary) on loopback, for tests.

It runs deploy/prometheus/prometheus.local.yml with the repo's rules, copied into a
temporary directory next to a targets file naming the test's workers.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.integration.harness import free_port
from tests.observability.deployfiles import PROMETHEUS_DIR


class Prometheus:
    def __init__(self, binary: str, workdir: Path, targets: list[str]) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        shutil.copy(PROMETHEUS_DIR / "prometheus.local.yml", workdir / "prometheus.yml")
        shutil.copytree(PROMETHEUS_DIR / "rules", workdir / "rules")
        (workdir / "targets").mkdir()
        (workdir / "targets" / "workers.json").write_text(json.dumps([{"targets": targets}]))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "prometheus.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.binary = binary

    def start(self, timeout: float = 60.0) -> Prometheus:
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        self.process = subprocess.Popen(
            [self.binary, f"--config.file={self.workdir / 'prometheus.yml'}",
             f"--storage.tsdb.path={self.workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited: {self.log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"prometheus not ready: {self.log_path.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    # -- HTTP API -----------------------------------------------------------------
    def api(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}{query}", timeout=10) as resp:
            body = json.loads(resp.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("query", query=expr)
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        return list(data["result"])

    def value(self, expr: str) -> float | None:
        """The sum of an instant query's samples, None when it returns nothing."""
        result = self.query(expr)
        return sum(float(r["value"][1]) for r in result) if result else None

    def wait_for(self, expr: str, ok: Callable[[float | None], bool], timeout: float = 90.0) -> float | None:
        deadline = time.monotonic() + timeout
        while True:
            found = self.value(expr)
            if ok(found):
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(f"{expr} is {found} after {timeout} s")
            time.sleep(0.5)

"""A real broker with SASL_SSL and ACLs (deploy/broker.sh KAFKA_SECURITY=sasl_ssl).

The test makes its own certificate authority with openssl (a self-signed CA, a broker
certificate for 127.0.0.1 signed by it, a PKCS12 keystore), starts the broker on port
CHECKPOINT_TEST_KAFKA_PORT + 200 with SCRAM users created at format time, and stops it
at the end. Passwords are random per session.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.harness import REPO

PORT = int(os.environ.get("CHECKPOINT_TEST_KAFKA_PORT", "19092")) + 200


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if "tests/security" in str(item.fspath) and names & {"secure_broker", "broker", "ns"}:
            item.add_marker(pytest.mark.integration)


@dataclass(frozen=True)
class SecureBroker:
    bootstrap: str
    cafile: Path
    passwords: dict[str, str]
    env: dict[str, str]
    log: Path

    def client_env(self, user: str) -> dict[str, str]:
        """The worker/tool environment for `user` (streams.security variables)."""
        return {"CHECKPOINT_SECURITY_PROTOCOL": "SASL_SSL", "CHECKPOINT_SASL_MECHANISM": "SCRAM-SHA-512",
                "CHECKPOINT_SASL_USERNAME": user, "CHECKPOINT_SASL_PASSWORD": self.passwords[user],
                "CHECKPOINT_SSL_CAFILE": str(self.cafile)}

    def tool(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", str(REPO / "deploy" / "broker.sh"), *args], env=self.env,
                              check=True, capture_output=True, text=True)


def make_ca(directory: Path, keystore_password: str) -> tuple[Path, Path]:
    """A throwaway CA and a broker certificate for 127.0.0.1/localhost; (ca.pem, broker.p12)."""
    directory.mkdir(parents=True, exist_ok=True)

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    (directory / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                                       "extendedKeyUsage=serverAuth\n")
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "2", "-subj", "/CN=checkpoint-streams test CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "broker.key", "-out", "broker.csr",
        "-subj", "/CN=localhost")
    run("x509", "-req", "-in", "broker.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "broker.pem", "-days", "2", "-extfile", "san.cnf")
    run("pkcs12", "-export", "-in", "broker.pem", "-inkey", "broker.key", "-certfile", "ca.pem",
        "-out", "broker.p12", "-name", "broker", "-passout", f"pass:{keystore_password}")
    (directory / "ca.key").unlink()  # nobody signs anything else with it
    return directory / "ca.pem", directory / "broker.p12"


@pytest.fixture(scope="session")
def secure_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make the test CA")
    directory = tmp_path_factory.mktemp("tls")
    keystore_password = secrets.token_urlsafe(16)
    cafile, keystore = make_ca(directory, keystore_password)
    passwords = {user: secrets.token_urlsafe(16) for user in ("admin", "worker", "scanner")}
    env = {**os.environ, "KAFKA_PORT": str(PORT), "KAFKA_CONTROLLER_PORT": str(PORT + 1),
           "KAFKA_FRESH": "1", "KAFKA_SECURITY": "sasl_ssl", "KAFKA_SSL_KEYSTORE": str(keystore),
           "KAFKA_SSL_KEYSTORE_PASSWORD": keystore_password, "KAFKA_SSL_CAFILE": str(cafile),
           "KAFKA_SASL_ADMIN_USER": "admin", "KAFKA_SASL_ADMIN_PASSWORD": passwords["admin"],
           "KAFKA_SCRAM_USERS": f"worker:{passwords['worker']},scanner:{passwords['scanner']}"}
    subprocess.run(["bash", str(REPO / "deploy" / "broker.sh"), "start"], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    try:
        cache = Path(os.environ.get("CHECKPOINT_CACHE") or Path.home() / ".cache" / "checkpoint-streams")
        yield SecureBroker(f"127.0.0.1:{PORT}", cafile, passwords, {**env, "KAFKA_FRESH": "0"},
                           cache / f"broker-{PORT}" / "broker.log")
    finally:
        subprocess.run(["bash", str(REPO / "deploy" / "broker.sh"), "stop"], env=env, check=False,
                       stdout=subprocess.DEVNULL)

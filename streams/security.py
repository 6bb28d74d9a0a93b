"""Broker connection security from the environment: TLS and SASL/SCRAM, for every client.

One place reads the settings and renders them for each Kafka client the project uses:
Faust (`faust.App(**Security.faust())`), aiokafka (`AIOKafkaConsumer(**Security.aiokafka())`)
and kafka-python (`KafkaProducer(**Security.kafka_python())`). The default (nothing set)
is PLAINTEXT, exactly the behaviour before this module existed.

==============================  =====================================================
CHECKPOINT_SECURITY_PROTOCOL    PLAINTEXT (default), SSL, SASL_PLAINTEXT or SASL_SSL
CHECKPOINT_SASL_MECHANISM       SCRAM-SHA-512 (default), SCRAM-SHA-256 or PLAIN
CHECKPOINT_SASL_USERNAME        the principal (User:<name> in the broker's ACLs)
CHECKPOINT_SASL_PASSWORD        its password, or CHECKPOINT_SASL_PASSWORD_FILE (a file
                                holding it; wins over the variable, for secrets mounts)
CHECKPOINT_SSL_CAFILE           PEM bundle of the CA(s) that signed the broker
                                certificate (default: the system trust store)
CHECKPOINT_SSL_CERTFILE/KEYFILE client certificate and key, for mutual TLS (optional)
CHECKPOINT_SSL_CHECK_HOSTNAME   true (default): the certificate must name the host
==============================  =====================================================

A misconfiguration is one clear `SecurityConfigError` line at start-up (never with the
password in it); a password never appears in a repr or a log line.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")


class SecurityConfigError(ValueError):
    """The security settings cannot work; the message names the variable."""


@dataclass(frozen=True)
class Security:
    protocol: str = "PLAINTEXT"
    mechanism: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    cafile: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    check_hostname: bool = True

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def sasl(self) -> bool:
        return self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    # -- reading ---------------------------------------------------------------------
    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Security:
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        protocol = (get("CHECKPOINT_SECURITY_PROTOCOL") or "PLAINTEXT").upper()
        if protocol not in PROTOCOLS:
            raise SecurityConfigError(f"CHECKPOINT_SECURITY_PROTOCOL={protocol}: expected one of "
                                      + ", ".join(PROTOCOLS))
        sasl = protocol.startswith("SASL_")
        mechanism = (get("CHECKPOINT_SASL_MECHANISM") or "SCRAM-SHA-512").upper() if sasl else None
        if mechanism is not None and mechanism not in MECHANISMS:
            raise SecurityConfigError(f"CHECKPOINT_SASL_MECHANISM={mechanism}: expected one of "
                                      + ", ".join(MECHANISMS))
        password = get("CHECKPOINT_SASL_PASSWORD")
        password_file = get("CHECKPOINT_SASL_PASSWORD_FILE")
        if password_file:
            try:
                password = Path(password_file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise SecurityConfigError(
                    f"CHECKPOINT_SASL_PASSWORD_FILE={password_file}: {exc.strerror}") from None
        username = get("CHECKPOINT_SASL_USERNAME")
        if sasl and not (username and password):
            raise SecurityConfigError(f"{protocol} needs CHECKPOINT_SASL_USERNAME and "
                                      "CHECKPOINT_SASL_PASSWORD (or CHECKPOINT_SASL_PASSWORD_FILE)")
        files = {name: get(name) for name in
                 ("CHECKPOINT_SSL_CAFILE", "CHECKPOINT_SSL_CERTFILE", "CHECKPOINT_SSL_KEYFILE")}
        for name, path in files.items():
            if path and not Path(path).is_file():
                raise SecurityConfigError(f"{name}={path}: no such file")
        if bool(files["CHECKPOINT_SSL_CERTFILE"]) != bool(files["CHECKPOINT_SSL_KEYFILE"]):
            raise SecurityConfigError("CHECKPOINT_SSL_CERTFILE and CHECKPOINT_SSL_KEYFILE go together")
        check = (get("CHECKPOINT_SSL_CHECK_HOSTNAME") or "true").lower()
        if check not in ("true", "false", "1", "0", "yes", "no"):
            raise SecurityConfigError(f"CHECKPOINT_SSL_CHECK_HOSTNAME={check}: expected true or false")
        return cls(protocol=protocol, mechanism=mechanism, username=username if sasl else None,
                   password=password if sasl else None, cafile=files["CHECKPOINT_SSL_CAFILE"],
                   certfile=files["CHECKPOINT_SSL_CERTFILE"], keyfile=files["CHECKPOINT_SSL_KEYFILE"],
                   check_hostname=check in ("true", "1", "yes"))

    # -- rendering ---------------------------------------------------------------------
    def ssl_context(self) -> ssl.SSLContext | None:
        """A client TLS context (TLS 1.2+, certificate verified against the CA file)."""
        if not self.tls:
            return None
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.cafile)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.check_hostname = self.check_hostname
        if self.certfile and self.keyfile:
            context.load_cert_chain(self.certfile, self.keyfile)
        return context

    def faust(self) -> dict[str, Any]:
        """Keyword arguments for `faust.App(...)`: broker_credentials and/or ssl_context."""
        if self.sasl:
            import faust

            return {"broker_credentials": faust.SASLCredentials(
                username=self.username, password=self.password, ssl_context=self.ssl_context(),
                mechanism=self.mechanism)}
        if self.tls:
            return {"ssl_context": self.ssl_context()}
        return {}

    def aiokafka(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka clients (consumer, producer, admin)."""
        if self.protocol == "PLAINTEXT":
            return {}
        out: dict[str, Any] = {"security_protocol": self.protocol}
        if self.tls:
            out["ssl_context"] = self.ssl_context()
        if self.sasl:
            out.update(sasl_mechanism=self.mechanism, sasl_plain_username=self.username,
                       sasl_plain_password=self.password)
        return out

    def kafka_python(self) -> dict[str, Any]:
        """Keyword arguments for kafka-python clients (producer, consumer, admin)."""
        if self.protocol == "PLAINTEXT":
            return {}
        out: dict[str, Any] = {"security_protocol": self.protocol}
        if self.tls:
            out.update(ssl_cafile=self.cafile, ssl_check_hostname=self.check_hostname)
            if self.certfile:
                out.update(ssl_certfile=self.certfile, ssl_keyfile=self.keyfile)
            if self.cafile is None:  # kafka-python's default context: the system trust store
                out["ssl_context"] = self.ssl_context()
        if self.sasl:
            out.update(sasl_mechanism=self.mechanism, sasl_plain_username=self.username,
                       sasl_plain_password=self.password)
        return out


def from_env(env: Mapping[str, str] | None = None) -> Security:
    """The broker security settings of this process (see the module docstring)."""
    return Security.from_env(env)

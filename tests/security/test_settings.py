"""streams.security: one set of variables, rendered for Faust, aiokafka and kafka-python."""

from __future__ import annotations

import ssl

import pytest

from streams import security

CA = "tests/security/ca-missing.pem"


def test_nothing_set_is_plaintext_exactly_as_before():
    settings = security.from_env({})
    assert settings.protocol == "PLAINTEXT"
    assert settings.faust() == {} and settings.aiokafka() == {} and settings.kafka_python() == {}


def test_sasl_ssl_with_scram(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("not parsed here")
    env = {"CHECKPOINT_SECURITY_PROTOCOL": "sasl_ssl", "CHECKPOINT_SASL_USERNAME": "worker",
           "CHECKPOINT_SASL_PASSWORD": "s3cret-pass", "CHECKPOINT_SSL_CAFILE": str(ca)}
    settings = security.from_env(env)
    assert settings.protocol == "SASL_SSL" and settings.mechanism == "SCRAM-SHA-512"
    assert "s3cret-pass" not in repr(settings)
    assert settings.kafka_python() == {
        "security_protocol": "SASL_SSL", "ssl_cafile": str(ca), "ssl_check_hostname": True,
        "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": "worker",
        "sasl_plain_password": "s3cret-pass"}


def test_password_file_and_tls_context(tmp_path):
    secret = tmp_path / "password"
    secret.write_text("from-a-file-1\n")
    env = {"CHECKPOINT_SECURITY_PROTOCOL": "SASL_SSL", "CHECKPOINT_SASL_USERNAME": "worker",
           "CHECKPOINT_SASL_PASSWORD": "overridden", "CHECKPOINT_SASL_PASSWORD_FILE": str(secret),
           "CHECKPOINT_SASL_MECHANISM": "scram-sha-256"}
    settings = security.from_env(env)
    assert settings.password == "from-a-file-1" and settings.mechanism == "SCRAM-SHA-256"
    context = settings.ssl_context()
    assert isinstance(context, ssl.SSLContext) and context.verify_mode == ssl.CERT_REQUIRED
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2 and context.check_hostname
    auth = settings.aiokafka()
    assert auth["security_protocol"] == "SASL_SSL" and auth["sasl_mechanism"] == "SCRAM-SHA-256"
    credentials = settings.faust()["broker_credentials"]
    assert credentials.protocol.value == "SASL_SSL" and credentials.mechanism.value == "SCRAM-SHA-256"
    assert "from-a-file-1" not in repr(credentials)


def test_tls_only():
    settings = security.from_env({"CHECKPOINT_SECURITY_PROTOCOL": "SSL",
                                  "CHECKPOINT_SSL_CHECK_HOSTNAME": "false"})
    assert set(settings.faust()) == {"ssl_context"} and settings.aiokafka()["security_protocol"] == "SSL"
    assert settings.kafka_python()["ssl_check_hostname"] is False


@pytest.mark.parametrize(("env", "names"), [
    ({"CHECKPOINT_SECURITY_PROTOCOL": "TLS"}, "CHECKPOINT_SECURITY_PROTOCOL"),
    ({"CHECKPOINT_SECURITY_PROTOCOL": "SASL_SSL"}, "CHECKPOINT_SASL_USERNAME"),
    ({"CHECKPOINT_SECURITY_PROTOCOL": "SASL_SSL", "CHECKPOINT_SASL_USERNAME": "u",
      "CHECKPOINT_SASL_PASSWORD": "p", "CHECKPOINT_SASL_MECHANISM": "GSSAPI"}, "CHECKPOINT_SASL_MECHANISM"),
    ({"CHECKPOINT_SECURITY_PROTOCOL": "SSL", "CHECKPOINT_SSL_CAFILE": CA}, "CHECKPOINT_SSL_CAFILE"),
    ({"CHECKPOINT_SECURITY_PROTOCOL": "SASL_SSL", "CHECKPOINT_SASL_USERNAME": "u",
      "CHECKPOINT_SASL_PASSWORD_FILE": "/nonexistent/pw"}, "CHECKPOINT_SASL_PASSWORD_FILE"),
])
def test_misconfiguration_is_one_clear_line(env, names):
    with pytest.raises(security.SecurityConfigError) as error:
        security.from_env(env)
    assert names in str(error.value) and "\n" not in str(error.value)

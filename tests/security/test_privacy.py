"""Privacy: person references are keyed hashes; a resident ID number never gets through.

Unit level: streams.privacy (the edge helper and its CLI) and what a dead letter may keep
(codec.dead_letter: keep / drop / encrypt). End to end: a live worker on the real broker
is fed inputs carrying a resident ID number in every spelling the gate recognises, and
every output of the run is searched for it: every topic the worker writes (outputs,
internal topics, table changelogs), its log and its /metrics page.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import re
import urllib.request

import orjson
import pytest
from kafka import KafkaConsumer

from streams import codec, privacy
from streams.contracts import validator
from streams.engine.timeutil import parse_ts
from streams.topics import INPUT_SCHEMAS
from tests.integration.harness import read_topic

KEY = b"deployment-key-for-tests-0123456789"
#: encrypt mode needs the `cryptography` package (a dependency to add to pyproject.toml)
CRYPTO = importlib.util.find_spec("cryptography") is not None
RESIDENT_ID = "11010519491231002X"  # check character valid (GB 11643), made up
PERSON = re.compile(r"^[A-Za-z0-9_-]{8,128}$")  # schemas/common.schema.json#/$defs/person


# ------------------------------------------------------------------ person_ref
def test_person_ref_is_a_keyed_hash_matching_the_contract():
    ref = privacy.person_ref(RESIDENT_ID, KEY)
    assert privacy.is_person_ref(ref) and PERSON.match(ref) and len(ref) == 52
    assert ref == ref.lower() and "=" not in ref and RESIDENT_ID not in ref
    assert privacy.person_ref(RESIDENT_ID, KEY) == ref  # stable: one traveller, one reference
    assert privacy.person_ref(RESIDENT_ID, b"another-deployment-key-000") != ref  # keyed
    assert privacy.person_ref("11010519491231003X", KEY) != ref


@pytest.mark.parametrize("typed", [
    "11010519491231002x", " 110105 19491231 002X ", "110105-19491231-002X",
    "".join(chr(ord(c) + 0xFEE0) for c in RESIDENT_ID),  # full-width digits from a form
])
def test_the_same_number_typed_differently_gives_the_same_reference(typed):
    assert privacy.person_ref(typed, KEY) == privacy.person_ref(RESIDENT_ID, KEY)


def test_a_person_ref_passes_the_gate_as_a_person():
    scan = {"id": "st-1", "person": privacy.person_ref(RESIDENT_ID, KEY),
            "event_time": "2022-08-21T10:00:00+08:00",
            "checkpoint": {"id": "CP-1", "kind": "station", "area": "140106"}, "travel": []}
    assert codec.check("checkpoint.scans.station", scan, parse_ts(scan["event_time"]))


def test_keys_are_configured_not_guessed(tmp_path):
    with pytest.raises(privacy.KeyConfigError):
        privacy.deployment_key({})
    with pytest.raises(privacy.KeyConfigError):
        privacy.parse_key("short")
    assert privacy.parse_key("hex:" + "ab" * 32) == bytes.fromhex("ab" * 32)
    assert privacy.parse_key("base64:" + base64.b64encode(b"k" * 20).decode()) == b"k" * 20
    key_file = tmp_path / "key"
    key_file.write_text("hex:" + "cd" * 32 + "\n")
    assert privacy.deployment_key({"CHECKPOINT_PERSON_KEY_FILE": str(key_file),
                                   "CHECKPOINT_PERSON_KEY": "ignored-when-a-file-is-set"}) == b"\xcd" * 32
    with pytest.raises(privacy.KeyConfigError) as bad:
        privacy.parse_key("hex:zz" + "0" * 40)
    assert "zz" not in str(bad.value)


def test_resident_id_check_character():
    assert privacy.resident_id_checksum_ok(RESIDENT_ID)
    assert not privacy.resident_id_checksum_ok("110105194912310021")
    assert not privacy.resident_id_checksum_ok("1101051949")


def test_cli_reads_numbers_from_stdin_and_never_echoes_them(monkeypatch, capsys):
    monkeypatch.setenv("CHECKPOINT_PERSON_KEY", "hex:" + KEY.hex())
    out = io.StringIO()
    assert privacy.main(["person-ref", "--check"], stdin=io.StringIO(f"{RESIDENT_ID}\n\n"), stdout=out) == 0
    assert out.getvalue() == privacy.person_ref(RESIDENT_ID, KEY) + "\n"
    assert privacy.main(["person-ref", "--check"], stdin=io.StringIO("110105194912310021\n"),
                        stdout=io.StringIO()) == 1
    err = capsys.readouterr().err
    assert "line 1" in err and "110105194912310021" not in err
    key = io.StringIO()
    assert privacy.main(["generate-key"], stdout=key) == 0
    assert len(privacy.parse_key(key.getvalue())) == 32


# ---------------------------------------------------------------- dead letters
SOURCE = codec.Source("checkpoint.scans.station", 1, 42)
BAD = b'{"id":"st-9","person":"person-0009","travel":"nowhere"}'


def _letter(raw: bytes, reason: str = "schema_violation", **kwargs: object) -> dict:
    letter = codec.dead_letter(SOURCE, raw, reason, "travel: 'nowhere' is not of type 'array'",
                               parse_ts("2022-08-21T10:00:00+08:00"), **kwargs)  # type: ignore[arg-type]
    assert not list(validator("dead-letter").iter_errors(letter))
    return letter


def test_dead_letter_originals_keep_or_drop(monkeypatch):
    assert base64.b64decode(_letter(BAD)["original"]) == BAD  # default: keep
    monkeypatch.setenv(codec.ORIGINAL_ENV, "drop")
    assert _letter(BAD)["original"] is None


@pytest.mark.skipif(not CRYPTO, reason="CHECKPOINT_DEAD_LETTER_ORIGINAL=encrypt needs 'cryptography'")
def test_dead_letter_originals_encrypted(monkeypatch):
    key = "hex:" + "5a" * 32
    monkeypatch.setenv(codec.ORIGINAL_ENV, "encrypt")
    monkeypatch.setenv(codec.ORIGINAL_KEY_ENV, key)
    letter = _letter(BAD)
    sealed = base64.b64decode(letter["original"])
    assert sealed.startswith(codec.SEALED_MAGIC) and b"person-0009" not in sealed
    assert codec.open_original(letter, key) == BAD
    with pytest.raises(Exception):  # noqa: B017 - AES-GCM InvalidTag: the id is bound in
        codec.open_original({**letter, "id": "dl-another"}, key)
    with pytest.raises(Exception):  # noqa: B017
        codec.open_original(letter, "hex:" + "00" * 32)


def test_a_misconfigured_encryption_drops_originals_and_says_so(monkeypatch):
    monkeypatch.setenv(codec.ORIGINAL_ENV, "encrypt")
    monkeypatch.delenv(codec.ORIGINAL_KEY_ENV, raising=False)
    with pytest.raises(ValueError):
        codec.original_mode()
    assert _letter(BAD)["original"] is None  # fail closed (and logged once, as an error)
    monkeypatch.setenv(codec.ORIGINAL_ENV, "sometimes")
    assert _letter(BAD)["original"] is None


@pytest.mark.parametrize("mode", ["keep", "drop", "encrypt"])
@pytest.mark.parametrize("spelling", [
    RESIDENT_ID, RESIDENT_ID.lower(), "".join(f"\\u{ord(c):04x}" for c in RESIDENT_ID),
    "".join(chr(ord(c) + 0xFEE0) for c in RESIDENT_ID), "110105 19491231 002X",
])
def test_bytes_holding_a_number_are_never_kept_in_any_mode(monkeypatch, mode, spelling):
    monkeypatch.setenv(codec.ORIGINAL_ENV, mode)
    monkeypatch.setenv(codec.ORIGINAL_KEY_ENV, "hex:" + "5a" * 32)
    raw = b'{"id":"st-9","note":"' + spelling.encode() + b'"'  # truncated: malformed JSON
    letter = _letter(raw, "malformed_json", input_id=spelling)
    assert letter["original"] is None and letter["input_id"] is None
    assert RESIDENT_ID not in orjson.dumps(letter).decode().upper()


def test_readable_fields_are_redacted():
    letter = codec.dead_letter(SOURCE, BAD, "schema_violation",
                               "person: '１１０１０５１９４９１２３１００２Ｘ' does not match", 0,
                               input_id="st-9")
    assert letter["detail"] == "person: '[redacted]' does not match" and letter["input_id"] == "st-9"


# ------------------------------------------------------------- end to end: grep it all
def _spellings() -> list[bytes]:
    escaped = "".join(f"\\u{ord(c):04x}" for c in RESIDENT_ID)
    return [RESIDENT_ID.encode(), RESIDENT_ID.lower().encode(), escaped.encode(), escaped.upper().encode()]


def _hits(blob: bytes, shapes: bool = True) -> list[str]:
    found = [s.decode() for s in _spellings() if s.lower() in blob.lower()]
    if shapes and codec.holds_identity_number(blob):
        found.append("an identity-number shape")
    return found


GOOD = {"id": "st-ok-1", "person": privacy.person_ref(RESIDENT_ID, KEY),
        "event_time": "2022-08-21T10:00:00+08:00",
        "checkpoint": {"id": "TY-SOUTH", "kind": "station", "area": "140105"},
        "travel": [{"area": "540102", "date": "2022-08-19"}]}
ESCAPED = "".join(f"\\u{ord(c):04x}" for c in RESIDENT_ID)


def _written_topics(ns) -> list[str]:
    """Every topic of this namespace the worker writes: not the input topics."""
    consumer = KafkaConsumer(bootstrap_servers=ns.bootstrap)
    try:
        names = consumer.topics()
    finally:
        consumer.close()
    inputs = {ns.topic(t) for t in INPUT_SCHEMAS}
    return sorted(t for t in names if t.startswith((ns.prefix, ns.app_id)) and t not in inputs)


def _metrics(worker) -> bytes | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{worker.port}/metrics", timeout=5) as page:
            return bytes(page.read())
    except urllib.error.HTTPError:
        return None


def test_a_live_run_never_lets_the_number_out(ns, workers):
    key = "hex:" + "3c" * 32
    mode = "encrypt" if CRYPTO else "drop"
    worker = workers(clock="stream", env={codec.ORIGINAL_ENV: mode, codec.ORIGINAL_KEY_ENV: key})
    person = GOOD["person"]
    hostile: list[bytes] = [
        orjson.dumps({**GOOD, "id": "st-id-1", "note": f"holder {RESIDENT_ID}"}),
        orjson.dumps({**GOOD, "id": "st-id-2", "person": RESIDENT_ID}),
        orjson.dumps({**GOOD, "id": "st-id-3", "person": RESIDENT_ID.lower()}),
        orjson.dumps({**GOOD, "id": "st-id-5", "travel": [{"area": "540102", "date": "2022-08-19",
                                                           "by": "@@"}]}).replace(b"@@", ESCAPED.encode()),
        orjson.dumps({**GOOD, "id": "st-id-6"})[:-20] + RESIDENT_ID.encode(),  # malformed too
        orjson.dumps({**GOOD, "id": "st-bad-7", "travel": "nowhere"}),  # an ordinary dead letter
    ]
    command = {"id": "cmd-id-8", "event_time": "2022-08-21T11:00:00+08:00", "person": person,
               "operator": "op-7", "action": "release", "reason": f"verified {RESIDENT_ID}"}
    ns.produce([{"topic": "checkpoint.scans.station", "key": person, "value": GOOD},
                *({"topic": "checkpoint.scans.station", "key": person, "value": raw} for raw in hostile),
                {"topic": "checkpoint.operator-commands", "key": person, "value": command}])
    ns.wait_idle()
    outputs = ns.read()
    letters = [r["value"] for r in outputs if r["topic"] == "checkpoint.dead-letters"]
    assert len(letters) == len(hostile) + 1, letters
    assert [r["value"]["kind"] for r in outputs if r["topic"] == "checkpoint.code-changes"] == ["assign"]
    reasons = sorted(letter["reason"] for letter in letters)
    assert reasons.count("raw_identity_number") == 6, reasons
    for letter in letters:
        if letter["reason"] == "raw_identity_number" or mode == "drop":
            assert letter["original"] is None
        else:  # sealed, and it opens to bytes without the number
            assert base64.b64decode(letter["original"]).startswith(codec.SEALED_MAGIC)
            assert not _hits(codec.open_original(letter, key) or b"")
    searched: dict[str, int] = {}
    written = _written_topics(ns)
    assert any("persons-changelog" in t for t in written) and ns.topic("checkpoint.dead-letters") in written
    for topic in written:
        for message_key, value in read_topic(ns.bootstrap, topic, idle_ms=800):
            searched[topic] = searched.get(topic, 0) + 1
            for part in (message_key or b"", value or b""):
                assert not _hits(part), (topic, part[:300])
    log = worker.log_path.read_bytes()
    assert b"dead letter" in log and not _hits(log)
    metrics = _metrics(worker)
    if metrics is not None:  # exact spellings only: float samples are long digit runs
        assert b"checkpoint_dead_letters_total" in metrics
        assert not _hits(metrics, shapes=False)
    print(f"privacy grep: {sum(searched.values())} messages on {len(searched)} topics, {len(log)} log "
          f"bytes, {'no' if metrics is None else len(metrics)} metrics bytes: no identity number")


def test_an_escaped_number_as_the_input_id_stays_out_of_the_log(ns, workers):
    """The gate hands the worker's log line `rejected.input_id`, which here IS the number
    (the raw bytes hold only \\u escapes); the dead letter nulls it (codec.dead_letter) and
    the structured log formatter redacts it (streams/observability.py). Both must hold."""
    worker = workers(clock="stream")
    raw = orjson.dumps({**GOOD, "id": "@@"}).replace(b"@@", ESCAPED.encode())
    ns.produce([{"topic": "checkpoint.scans.station", "key": GOOD["person"], "value": raw}])
    ns.wait_idle()
    letters = [r["value"] for r in ns.read() if r["topic"] == "checkpoint.dead-letters"]
    assert [(x["reason"], x["input_id"]) for x in letters] == [("raw_identity_number", None)]
    assert not _hits(worker.log_path.read_bytes())

"""Bytes in, validated messages or dead letters out: the one gate every input passes.

Order matters: size first (cheap, bounds memory), then the raw-identity-number check on
the raw bytes (so such a number is never parsed, logged or echoed), then JSON, then the
topic's JSON Schema, then semantic checks (known area codes, event time bounds). Every
rejection is a dead letter with a reason code; nothing is silently dropped.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson

from . import areas, contracts, fastcheck
from .engine.evaluate import digest
from .engine.timeutil import format_ts, parse_ts
from .topics import INPUT_SCHEMAS

MAX_MESSAGE_BYTES = 1_000_000
# Anything shaped like an 18-digit resident identity number: 17 digits and a digit or X,
# not inside a longer run of digits. Deliberately loose: a false positive costs a dead
# letter, a false negative leaks a person's identity.
RAW_ID_BYTES = re.compile(rb"(?<![0-9])[0-9]{17}[0-9Xx](?![0-9])")
RAW_ID_TEXT = re.compile(r"(?<![0-9])[0-9]{17}[0-9Xx](?![0-9])")


@dataclass(frozen=True, slots=True)
class Source:
    topic: str
    partition: int | None = None
    offset: int | None = None
    line: int | None = None


class Rejected(Exception):
    def __init__(self, reason: str, detail: str, input_id: str | None = None, keep: bool = True):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.input_id = input_id
        self.keep_original = keep


# ------------------------------------------------------------------ dead letters
#: What happens to a dead letter's original bytes (env CHECKPOINT_DEAD_LETTER_ORIGINAL):
#: keep (base64, the default), drop (null), encrypt (AES-256-GCM under
#: CHECKPOINT_DEAD_LETTER_KEY, see `seal_original`). Whatever the setting, bytes that
#: hold something shaped like a resident ID number are always dropped: the number must
#: not enter the system, not even encrypted.
ORIGINAL_ENV = "CHECKPOINT_DEAD_LETTER_ORIGINAL"
ORIGINAL_KEY_ENV = "CHECKPOINT_DEAD_LETTER_KEY"
ORIGINAL_MODES = ("keep", "drop", "encrypt")
#: Sealed originals start with this (base64 "Q1NETDE"), then a 12-byte nonce, then the
#: AES-GCM ciphertext and tag; the dead letter's id is the associated data.
SEALED_MAGIC = b"CSDL1"
_UNICODE_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")
#: The number written in groups (110101 19900307 777X, 110101-19900307-777X).
GROUPED_ID = re.compile(r"(?<![0-9])[0-9]{6}[ -]?[0-9]{8}[ -]?[0-9]{3}[0-9Xx](?![0-9])")
GROUPED_ID_BYTES = re.compile(GROUPED_ID.pattern.encode())


def _identity_text(text: str) -> str:
    """Text as a reader sees it: JSON \\u escapes resolved, full-width digits folded."""
    if "\\u" in text:
        text = _UNICODE_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)
    return unicodedata.normalize("NFKC", text)


#: Digits to "0", the group separators (space, hyphen) to "-", every other byte kept: in
#: that image each identity-number shape above holds one of `_NUMBER_SHAPES` (17 digits in
#: a row, or the three groups with one or both separators), so where none is found no
#: pattern can match and the regular expressions need not run. Substring search runs in
#: C over the whole message in about a microsecond; the patterns took ~50 µs a scan.
_SHAPE_IMAGE = bytes.maketrans(b"0123456789 ", b"0000000000-")
_NUMBER_SHAPES = (b"0" * 17, b"000000-" + b"0" * 11, b"0" * 14 + b"-000",
                  b"000000-00000000-000")


def may_hold_number(data: bytes) -> bool:
    """False only where no identity-number shape can match (`_SHAPE_IMAGE`). Bytes over
    `MAX_MESSAGE_BYTES` are not copied into an image: for them it says "maybe"."""
    if len(data) > MAX_MESSAGE_BYTES:
        return True
    image = data.translate(_SHAPE_IMAGE)
    return any(shape in image for shape in _NUMBER_SHAPES)


def text_may_hold_number(text: str) -> bool:
    return may_hold_number(text.encode("utf-8", "replace"))


def matches_number(text: str) -> bool:
    """Do the identity-number patterns match `text` as it stands (nothing folded)?"""
    return text_may_hold_number(text) and bool(RAW_ID_TEXT.search(text) or GROUPED_ID.search(text))


def holds_identity_number(raw: bytes | str) -> bool:
    """Is anything shaped like an 18-digit resident ID number in these bytes or text?

    Stricter than `RAW_ID_BYTES` on raw bytes: also JSON \\u-escaped digits, full-width
    digits and the grouped spellings. Used to decide what a dead letter may keep. Bytes
    are searched without copies; only text with escapes or non-ASCII characters is
    decoded, and such bytes over `MAX_MESSAGE_BYTES` count as holding one (their
    original is never kept anyway).
    """
    if isinstance(raw, bytes):
        if may_hold_number(raw) and (RAW_ID_BYTES.search(raw) or GROUPED_ID_BYTES.search(raw)):
            return True
        if b"\\u" not in raw and raw.isascii():
            return False
        if len(raw) > MAX_MESSAGE_BYTES:
            return True
        raw = raw.decode("utf-8", "replace")
    text = _identity_text(raw)
    return matches_number(text)


def redact(text: str) -> str:
    """`text` with every identity-number shape replaced by ``[redacted]``."""
    text = _identity_text(text)
    if not text_may_hold_number(text):
        return text
    return GROUPED_ID.sub("[redacted]", RAW_ID_TEXT.sub("[redacted]", text))


def original_mode(env: Mapping[str, str] | None = None) -> tuple[str, str | None]:
    """The configured (mode, key text); raises ValueError for a setting that cannot work."""
    env = os.environ if env is None else env
    mode = (env.get(ORIGINAL_ENV) or "keep").strip().lower()
    if mode not in ORIGINAL_MODES:
        raise ValueError(f"{ORIGINAL_ENV}={mode!r}: expected one of {', '.join(ORIGINAL_MODES)}")
    key = env.get(ORIGINAL_KEY_ENV)
    if mode == "encrypt":
        _cipher(key or "")  # fail on a missing or short key, or a missing library
    return mode, key


@lru_cache(maxsize=4)
def _cipher(key_text: str) -> Any:
    from .privacy import KeyConfigError, parse_key

    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError:  # pragma: no cover - depends on the installation
        raise ValueError(f"{ORIGINAL_ENV}=encrypt needs the 'cryptography' package") from None
    if not key_text:
        raise ValueError(f"{ORIGINAL_ENV}=encrypt needs {ORIGINAL_KEY_ENV} (hex:<64 hex digits>)")
    try:
        key = parse_key(key_text)
    except KeyConfigError as exc:
        raise ValueError(f"{ORIGINAL_KEY_ENV}: {exc}") from None
    if len(key) != 32:
        raise ValueError(f"{ORIGINAL_KEY_ENV} must be 32 bytes for AES-256-GCM, got {len(key)}")
    return AESGCM(key)


def seal_original(raw: bytes, letter_id: str, key_text: str) -> bytes:
    """Encrypt a dead letter's original bytes (AES-256-GCM, the letter id as AAD)."""
    nonce = os.urandom(12)
    return SEALED_MAGIC + nonce + _cipher(key_text).encrypt(nonce, raw, letter_id.encode())


def open_original(letter: Mapping[str, Any], key_text: str) -> bytes | None:
    """The original bytes of a dead letter (kept or sealed), None if it was dropped."""
    if letter.get("original") is None:
        return None
    blob = base64.b64decode(letter["original"])
    if not blob.startswith(SEALED_MAGIC):
        return blob
    nonce, sealed = blob[len(SEALED_MAGIC):len(SEALED_MAGIC) + 12], blob[len(SEALED_MAGIC) + 12:]
    plain: bytes = _cipher(key_text).decrypt(nonce, sealed, str(letter["id"]).encode())
    return plain


_warned: set[str] = set()


#: Originals over this many bytes are kept as their SHA-256 and their first
#: `ORIGINAL_PREFIX_BYTES` (`CHECKPOINT_DEAD_LETTER_MAX_ORIGINAL_BYTES`): a dead letter must
#: fit under the broker's message.max.bytes (1 MB by default) with room to spare, and
#: base64 grows an original by a third.
DEFAULT_MAX_ORIGINAL_BYTES = 65_536
ORIGINAL_PREFIX_BYTES = 1_024


def dead_letter(
    source: Source, raw: bytes, reason: str, detail: str, received_at: int, *,
    input_id: str | None = None, keep_original: bool = True, subject: str | None = None,
    max_original: int = DEFAULT_MAX_ORIGINAL_BYTES,
) -> dict[str, Any]:
    """A dead-letter message; its id is derived from where the bytes came from (and from
    `subject`, when one input can fail for several persons: a raise's visitors).

    No readable field (detail, input_id) holds an identity-number shape, and the
    original bytes are kept, sealed or dropped as `original_mode` says; bytes that hold
    such a number are dropped whatever the mode, and are fingerprinted only after
    redaction (so the id is no oracle for guessing the number). An original over
    `max_original` bytes is kept as its first `ORIGINAL_PREFIX_BYTES` with its size and
    SHA-256 (`original_size`, `original_sha256`), so that every dead letter fits on the
    broker.
    """
    has_number = reason == "raw_identity_number" or holds_identity_number(raw)
    fingerprint = hashlib.sha256(
        RAW_ID_BYTES.sub(b"[redacted]", raw) if has_number else raw).hexdigest()[:16]
    letter_id = "dl-" + digest(source.topic, source.partition, source.offset, source.line,
                               fingerprint, *(() if subject is None else (subject,)))
    try:
        mode, key_text = original_mode()
    except ValueError as exc:  # fail closed: never keep what we were told to protect
        if str(exc) not in _warned:
            _warned.add(str(exc))
            logging.getLogger("checkpoint_streams").error("dead letters drop originals: %s", exc)
        mode, key_text = "drop", None
    original: str | None = None
    truncated = len(raw) > max_original
    if keep_original and not has_number and mode != "drop":
        kept = raw[:ORIGINAL_PREFIX_BYTES] if truncated else raw
        payload = seal_original(kept, letter_id, key_text or "") if mode == "encrypt" else kept
        original = base64.b64encode(payload).decode()
    if input_id is not None and (holds_identity_number(input_id) or len(input_id) > 256):
        input_id = None
    letter: dict[str, Any] = {
        "id": letter_id,
        "reason": reason,
        "detail": redact(detail)[:500] or reason,
        "source": {"topic": source.topic, "partition": source.partition,
                   "offset": source.offset, "line": source.line},
        "input_id": input_id,
        "original": original,
        "received_at": format_ts(received_at),
    }
    if truncated and not has_number:
        letter["original_size"] = len(raw)
        letter["original_sha256"] = hashlib.sha256(raw).hexdigest()
    return letter


def _strings(value: Any) -> Iterator[str]:
    """Every key and string value, iteratively (hostile input may nest 1000 levels deep)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, Mapping):
            for key, child in item.items():
                yield str(key)
                stack.append(child)
        elif isinstance(item, list):
            stack.extend(item)


def _area_fields(topic: str, value: Mapping[str, Any]) -> Iterator[str]:
    checkpoint = value.get("checkpoint")
    if isinstance(checkpoint, Mapping):
        yield checkpoint.get("area", "")
    for entry in value.get("travel") or ():
        yield entry.get("area", "")
    for name in ("destination", "area", "lab_area", "alighting"):
        if isinstance(value.get(name), str):
            yield value[name]
    trip = value.get("trip")
    if isinstance(trip, Mapping) and isinstance(trip.get("alighting"), str):
        yield trip["alighting"]
    inbound = value.get("inbound")
    if isinstance(inbound, Mapping) and isinstance(inbound.get("entry_area"), str):
        yield inbound["entry_area"]


@dataclass(slots=True)
class Limits:
    """Event-time bounds relative to `now`; None disables a bound (replay has no wall clock)."""

    max_future_ms: int | None = 10 * 60 * 1000
    max_age_ms: int | None = None


def check(topic: str, value: Any, now: int, limits: Limits | None = None, *,
          parsed_from: bytes | None = None) -> dict[str, Any]:
    """Validate an already-parsed input; raises `Rejected` with a reason code.

    `parsed_from`: the JSON bytes `value` was parsed from with orjson, already searched
    whole with `holds_identity_number` (as `decode` and `replay.read_recording` do), so the
    per-string search is skipped, and `value` is plain JSON, so the compiled schema check
    (`fastcheck`) may accept it before the reference validator is asked. Decisions do not
    change.
    """
    limits = limits or Limits()
    schema_name = INPUT_SCHEMAS.get(topic)
    if schema_name is None:
        raise Rejected("unknown_topic", f"no input topic named {topic!r}")
    if not isinstance(value, dict):
        raise Rejected("schema_violation", "message is not a JSON object")
    input_id = value.get("id") if isinstance(value.get("id"), str) else None
    # Bytes from a topic were searched whole (`decode`: escapes, full-width and grouped
    # spellings included); values parsed elsewhere are searched string by string.
    if parsed_from is None and any(holds_identity_number(text) for text in _strings(value)):
        raise Rejected("raw_identity_number", "a field holds something shaped like a resident "
                       "identity number", input_id, keep=False)
    error = None if parsed_from is not None and fastcheck.accepts(schema_name, value) else next(
        iter(sorted(contracts.validator(schema_name).iter_errors(value),
                    key=lambda e: (len(e.absolute_path), e.validator))), None)
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top)"
        reason = "unknown_enum" if error.validator in ("enum", "const") else "schema_violation"
        raise Rejected(reason, f"{where}: {error.message[:200]}", input_id)
    for area in _area_fields(topic, value):
        if not areas.is_known(area):
            raise Rejected("invalid_area_code", f"unknown administrative area code {area!r}",
                           input_id)
    event_time = parse_ts(value["event_time"])
    if limits.max_future_ms is not None and event_time > now + limits.max_future_ms:
        raise Rejected("future_event_time", f"event_time {value['event_time']} is ahead of "
                       f"the clock by more than {limits.max_future_ms // 1000} s", input_id)
    if limits.max_age_ms is not None and event_time < now - limits.max_age_ms:
        raise Rejected("stale_event_time", f"event_time {value['event_time']} is older than "
                       f"{limits.max_age_ms // 86_400_000} days", input_id)
    return value


def decode(topic: str, raw: bytes, now: int, limits: Limits | None = None) -> dict[str, Any]:
    """Bytes from a topic to a validated message; raises `Rejected`."""
    if len(raw) > MAX_MESSAGE_BYTES:
        raise Rejected("too_large", f"{len(raw)} bytes exceeds {MAX_MESSAGE_BYTES}", keep=False)
    if holds_identity_number(raw):
        raise Rejected("raw_identity_number", "the message holds something shaped like a "
                       "resident identity number", keep=False)
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Rejected("malformed_json", f"not valid JSON: {str(exc)[:160]}") from None
    return check(topic, value, now, limits, parsed_from=raw)


def encode(value: Any) -> bytes:
    return orjson.dumps(value)

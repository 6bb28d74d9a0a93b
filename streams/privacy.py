"""Person references: keyed hashes made at the edge, so raw identity numbers never enter.

An edge scanner turns the identity document it reads into a **person reference** before
anything leaves the device::

    person_ref(identity, key) = base32(HMAC-SHA256(key, LABEL || normalise(identity)))

lower-case, without padding: 52 characters of ``[a-z2-7]``, which is what
``schemas/common.schema.json#/$defs/person`` accepts. The key is one secret per
deployment (all scanners of a deployment share it, so the same traveller gets the same
reference at every checkpoint); without it a reference cannot be linked back to a number
by trying the ~10^9 plausible resident ID numbers, which a plain hash would allow.

``LABEL`` separates this use of the key from any other (domain separation), and
``normalise`` makes the same document give the same reference however it was typed:
full-width digits, spaces, hyphens and a lower-case check character ``x`` are folded.

Command line (identity numbers are read from standard input, one a line, never from the
arguments, which end up in shell histories and process lists)::

    python -m streams.privacy generate-key              # prints hex:<64 hex digits>
    CHECKPOINT_PERSON_KEY=hex:... python -m streams.privacy person-ref < ids.txt

Nothing here logs, prints or keeps an identity number; errors name the line, never the
value.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
import sys
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TextIO

__all__ = [
    "KEY_ENV",
    "KEY_FILE_ENV",
    "LABEL",
    "MIN_KEY_BYTES",
    "PERSON_REF",
    "KeyConfigError",
    "deployment_key",
    "is_person_ref",
    "main",
    "normalise_identity",
    "parse_key",
    "person_ref",
    "person_refs",
    "resident_id_checksum_ok",
]

KEY_ENV = "CHECKPOINT_PERSON_KEY"
KEY_FILE_ENV = "CHECKPOINT_PERSON_KEY_FILE"
#: Domain-separation label: a reference made with this label never equals an HMAC the same
#: key makes for any other purpose. Changing it changes every reference (a new version).
LABEL = b"checkpoint-streams/person-ref/v1\x00"
MIN_KEY_BYTES = 16
#: The contract's person pattern (schemas/common.schema.json); person_ref output matches it.
PERSON_REF = re.compile(r"^[A-Za-z0-9_-]{8,128}$")
_REF = re.compile(r"^[a-z2-7]{52}$")
_FOLD = re.compile(r"[\s\-]+")
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"


class KeyConfigError(ValueError):
    """The deployment key is missing or unusable (the message never contains the key)."""


def parse_key(text: str) -> bytes:
    """A key as configured: ``hex:<hex>``, ``base64:<base64>``, or the text itself (UTF-8).

    At least ``MIN_KEY_BYTES`` bytes after decoding; 32 random bytes are recommended
    (``generate-key``).
    """
    text = text.strip()
    try:
        if text.startswith("hex:"):
            key = bytes.fromhex(text[4:])
        elif text.startswith("base64:"):
            key = base64.b64decode(text[7:], validate=True)
        else:
            key = text.encode("utf-8")
    except (ValueError, binascii.Error):
        raise KeyConfigError("the key is not valid hex:/base64: text") from None
    if len(key) < MIN_KEY_BYTES:
        raise KeyConfigError(f"the key has {len(key)} bytes; at least {MIN_KEY_BYTES} are needed "
                        "(generate one with: python -m streams.privacy generate-key)")
    return key


def deployment_key(env: Mapping[str, str] | None = None) -> bytes:
    """The deployment key from ``$CHECKPOINT_PERSON_KEY_FILE`` (a file holding the key text)
    or ``$CHECKPOINT_PERSON_KEY``; the file wins when both are set."""
    env = os.environ if env is None else env
    path = env.get(KEY_FILE_ENV)
    if path:
        try:
            return parse_key(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise KeyConfigError(f"cannot read {KEY_FILE_ENV}={path}: {exc.strerror}") from None
    text = env.get(KEY_ENV)
    if not text:
        raise KeyConfigError(f"no person key: set {KEY_FILE_ENV} or {KEY_ENV}")
    return parse_key(text)


def normalise_identity(identity: str) -> str:
    """Fold the ways one document number gets typed into one form.

    NFKC (full-width ``１２３`` to ``123``), no whitespace or hyphens, upper case (the
    resident ID check character ``x`` is ``X``).
    """
    folded = _FOLD.sub("", unicodedata.normalize("NFKC", identity)).upper()
    if not folded:
        raise ValueError("an empty identity cannot be referenced")
    return folded


def person_ref(identity: str, key: bytes) -> str:
    """The pseudonymous person reference of ``identity`` under the deployment ``key``."""
    if len(key) < MIN_KEY_BYTES:
        raise KeyConfigError(f"the key has {len(key)} bytes; at least {MIN_KEY_BYTES} are needed")
    digest = hmac.new(key, LABEL + normalise_identity(identity).encode("utf-8"),
                      hashlib.sha256).digest()
    return base64.b32encode(digest).decode("ascii").rstrip("=").lower()


def is_person_ref(value: str) -> bool:
    """True if ``value`` has the shape ``person_ref`` produces (52 chars of base32)."""
    return bool(_REF.match(value))


def resident_id_checksum_ok(identity: str) -> bool:
    """GB 11643-1999 check character of an 18-character resident ID number.

    Edge scanners may use it to catch a mistyped number, which would otherwise silently
    become a different person reference.
    """
    number = normalise_identity(identity)
    if len(number) != 18 or not number[:17].isdigit() or not (number[17].isdigit() or number[17] == "X"):
        return False
    total = sum(int(digit) * weight for digit, weight in zip(number, _WEIGHTS, strict=False))
    return _CHECK[total % 11] == number[17]


def person_refs(lines: Iterable[str], key: bytes, *, check: bool = False) -> Iterator[str]:
    """One reference per non-empty input line (the CLI's core, usable from Python).

    With ``check``, a line that is not a valid resident ID number raises ``ValueError``
    naming the line number only.
    """
    for number, line in enumerate(lines, start=1):
        identity = line.strip()
        if not identity:
            continue
        if check and not resident_id_checksum_ok(identity):
            raise ValueError(f"line {number}: not a valid resident ID number (check character)")
        yield person_ref(identity, key)


def main(argv: list[str] | None = None, stdin: TextIO | None = None,
         stdout: TextIO | None = None) -> int:
    """``python -m streams.privacy generate-key | person-ref [--key-file F] [--check]``."""
    parser = argparse.ArgumentParser(
        prog="python -m streams.privacy",
        description="Make pseudonymous person references (HMAC-SHA256, deployment key).")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("generate-key", help="print a new random 32-byte key as hex:...")
    refs = commands.add_parser(
        "person-ref", help="read identity numbers from stdin, one a line; print references")
    refs.add_argument("--key-file", help=f"file holding the key (default ${KEY_FILE_ENV} "
                                         f"or ${KEY_ENV})")
    refs.add_argument("--check", action="store_true",
                      help="refuse lines that are not valid resident ID numbers")
    args = parser.parse_args(argv)
    out = stdout or sys.stdout
    if args.command == "generate-key":
        out.write("hex:" + secrets.token_hex(32) + "\n")
        return 0
    try:
        env = dict(os.environ)
        if args.key_file:
            env[KEY_FILE_ENV] = args.key_file
        key = deployment_key(env)
        for ref in person_refs(stdin or sys.stdin, key, check=args.check):
            out.write(ref + "\n")
    except ValueError as exc:  # KeyConfigError included; messages never hold a number or key
        print(f"person-ref: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

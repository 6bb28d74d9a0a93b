"""Edge tools: person references from identity numbers, and deployment keys."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .group import main


@main.command("person-ref")
@click.option("--key-file", type=click.Path(dir_okay=False, path_type=Path),
              help="File holding the deployment key (default $CHECKPOINT_PERSON_KEY_FILE, "
                   "or the key itself in $CHECKPOINT_PERSON_KEY).")
@click.option("--check", is_flag=True, help="Refuse lines that are not valid resident ID numbers.")
def person_ref_cmd(key_file: Path | None, check: bool) -> None:
    """Turn identity numbers (stdin, one a line) into person references (stdout).

    \b
    What edge scanners run before anything enters a topic: HMAC-SHA256 with the
    deployment key, base32. The numbers never leave this process, and errors
    never echo them.
      checkpoint-streams generate-key > /secure/person.key
      echo 110101199003077777 | checkpoint-streams person-ref --key-file /secure/person.key
    """
    from .. import privacy

    args = ["person-ref", *(["--key-file", str(key_file)] if key_file else []),
            *(["--check"] if check else [])]
    sys.exit(privacy.main(args))


@main.command("generate-key")
def generate_key_cmd() -> None:
    """Print a new random deployment key for person references (keep it secret)."""
    from .. import privacy

    sys.exit(privacy.main(["generate-key"]))


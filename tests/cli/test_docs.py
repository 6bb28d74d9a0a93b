"""The docs stay true: the README's first commands, every topic, setting, command and
option documented, and every relative link pointing at a file that exists."""

from __future__ import annotations

import re

import click
import pytest

from streams import contracts
from streams.cli import main
from tests.cli.conftest import REPO

DOCS = REPO / "docs"
OPERATIONS = (DOCS / "operations.md").read_text(encoding="utf-8")


def test_the_readme_starts_with_the_two_commands():
    head = (REPO / "README.md").read_text(encoding="utf-8").splitlines()[:6]
    assert any(line.startswith("make run") for line in head)
    assert any(line.startswith("make test") for line in head)


def test_every_topic_is_in_topics_md_with_its_partitions():
    text = (DOCS / "topics.md").read_text(encoding="utf-8")
    for name, spec in contracts.topics().items():
        row = next((line for line in text.splitlines() if line.startswith(f"| `{name}` |")), None)
        assert row is not None, name
        assert f"| {spec.partitions} |" in row, row
        assert (f"`{spec.message}`" if spec.message else "no schema") in row, row
        assert ("compacted" in row) is spec.compacted, row


def test_every_setting_is_documented():
    names = set(re.findall(r'"(CHECKPOINT_[A-Z_]+)"', (REPO / "streams" / "settings.py").read_text()))
    assert names
    for name in sorted(names):
        assert f"`{name}`" in OPERATIONS, name


def commands(group: click.Group, path: tuple[str, ...] = ()):
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if isinstance(command, click.Group):
            yield from commands(command, (*path, name))
        elif command is not None and name != "load":  # load documents itself (its own module)
            yield (*path, name), command


@pytest.mark.parametrize(("path", "command"), list(commands(main)), ids=lambda v: " ".join(v) if isinstance(v, tuple) else "")
def test_every_command_and_option_is_in_the_reference(path, command):
    words = " ".join(path)
    lines = [line for line in OPERATIONS.splitlines() if f"`{path[0]}" in line and path[-1] in line]
    assert lines, f"{words} is not in the reference"
    for param in command.params:
        if isinstance(param, click.Option):
            names = [*param.opts, *param.secondary_opts]
            assert any(name in OPERATIONS for name in names), f"{words} {names}"


@pytest.mark.parametrize("page", ["README.md", *[f"docs/{p.name}" for p in sorted(DOCS.glob("*.md"))]])
def test_relative_links_resolve(page):
    path = REPO / page
    for target in re.findall(r"\]\(([^)#:\s]+)(?:#[^)]*)?\)", path.read_text(encoding="utf-8")):
        assert (path.parent / target).exists(), f"{page}: {target}"


def test_the_readme_policy_commands_run_as_written():
    """The "Changing a policy" block, line by line, from the repository root (no broker:
    its publish is a dry run)."""
    import subprocess

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Changing a policy"):]
    block = section[section.index("```sh") + 5:section.index("```", section.index("```sh") + 5)]
    lines = [line.split("  #")[0].strip() for line in block.strip().splitlines()]
    assert lines[0].startswith("P=") and len(lines) == 5
    script = "set -e\n" + "\n".join(lines)
    done = subprocess.run(["bash", "-c", script], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1",
                                            "HOME": str(REPO)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "5/5 cases pass" in done.stdout
    assert '"digest": "sha256:' in done.stdout, done.stdout[-500:]  # the dry run's message

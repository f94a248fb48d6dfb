"""`--help` is consistent across subcommands: every one answers with `usage: loopphase <name>`,
a plain-text description (no reStructuredText markup), and a help text for every option."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from loopphase.cli import SUBCOMMANDS, usage

OPTION_RE = re.compile(r"^  (-\S+|[a-z][\w-]*)(?:[ ,].*)?$")


def help_text(name: str) -> str:
    done = subprocess.run([sys.executable, "-m", "loopphase.cli", name, "--help"], capture_output=True,
                          text=True, timeout=60, env={"COLUMNS": "100", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    return done.stdout


def options_without_help(text: str) -> list[str]:
    """Option/positional lines of argparse output with no help text on them or the next line."""
    lines = text.splitlines()
    missing = []
    in_options = False
    for i, line in enumerate(lines):
        if line.endswith(":") and not line.startswith(" "):
            in_options = line in {"options:", "positional arguments:"}
            continue
        if not in_options or not OPTION_RE.match(line):
            continue
        has_inline = re.search(r"\S {2,}\S", line.strip()) is not None
        following = lines[i + 1] if i + 1 < len(lines) else ""
        has_next = following.startswith(" " * 8) and not OPTION_RE.match(following)
        if not (has_inline or has_next):
            missing.append(line.strip())
    return missing


def test_the_top_level_help_lists_every_subcommand() -> None:
    text = usage()
    for name in SUBCOMMANDS:
        assert f"  {name} " in text


@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_every_subcommand_help_is_complete_and_plain(name: str) -> None:
    text = help_text(name)
    assert text.startswith(f"usage: loopphase {name}")
    assert "``" not in text, "reStructuredText markup in --help"
    assert options_without_help(text) == []


def test_the_command_list_is_aligned() -> None:
    """Every command's summary starts in one column (model-server, the longest name, once
    pushed its summary one column right of the others)."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "loopphase.cli", "--help"], capture_output=True,
                         text=True, timeout=60).stdout
    rows = [line for line in out.splitlines()[out.splitlines().index("commands:") + 1:] if line]
    columns = {len(line) - len(line.split(None, 1)[1]) for line in rows}
    assert len(rows) >= 10 and len(columns) == 1, out

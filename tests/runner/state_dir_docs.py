"""The state directory table of docs/local.md, as patterns a finished run's files must match."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "local.md"


def documented_patterns() -> list[re.Pattern[str]]:
    """One regex per path in the table's first column: ``<role>``-style placeholders match one
    path segment, a trailing ``…`` everything below."""
    text = DOC.read_text(encoding="utf-8")
    table = text[text.index("| file | what |"):]
    table = table[: table.index("\n\n")]
    patterns = []
    for row in table.splitlines()[2:]:
        first = row.split("|")[1]
        for path in re.findall(r"`([^`]+)`", first):
            regex = re.escape(path.removesuffix("…"))
            regex = re.sub(r"<[a-z]+>", "[^/]+", regex)
            patterns.append(re.compile(regex + (".*" if path.endswith("…") else "") + r"\Z"))
    return patterns


def undocumented(state_dir: Path) -> list[str]:
    """Files under ``state_dir`` that no row of the table names (relative paths)."""
    patterns = documented_patterns()
    assert patterns, "the state directory table of docs/local.md was not found"
    found = [p.relative_to(state_dir).as_posix() for p in state_dir.rglob("*") if not p.is_dir()]
    return sorted(f for f in found if not any(p.match(f) for p in patterns))

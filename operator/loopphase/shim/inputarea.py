"""Is a typed text still waiting in the agent's input area? (pure)

Only the bottom lines of the pane count (REFERENCE.md lesson 2: never scrollback). Inside them,
the input line is the last line that starts with a prompt marker (">", "❯", "›", optionally
inside a "│" box border); the text is pending when its prefix appears on that line or below it.
Without a prompt marker (opencode), the text is pending when its prefix appears anywhere in the
bottom lines.

``dialog_title``: whether a blocking dialog sits at the bottom (typed text would answer it),
with the core's own detector (``core.findings.dialog``, which the screen classifier uses),
imported without the classifier's heavier modules so the shim stays small.
"""

from __future__ import annotations

import re

from loopphase.core import findings

INPUT_AREA_LINES = 8
# The screen classifier's banner region: a dialog's key hints must be in it.
DIALOG_REGION_LINES = 15
PREFIX_CHARS = 24
PROMPT_LINE_RE = re.compile(r"^\s*(?:[│┃|]\s*)?[>❯›](?:\s|$)")


def _norm(text: str) -> str:
    return " ".join(text.split())


def input_area(pane: str, lines: int = INPUT_AREA_LINES) -> list[str]:
    rows = pane.rstrip("\n").split("\n")
    while rows and not rows[-1].strip():
        rows.pop()
    return rows[-lines:]


def text_pending(pane: str, text: str, lines: int = INPUT_AREA_LINES) -> bool:
    prefix = _norm(text)[:PREFIX_CHARS]
    if not prefix:
        return False
    area = input_area(pane, lines)
    start = 0
    for i in range(len(area) - 1, -1, -1):
        if PROMPT_LINE_RE.match(area[i]):
            start = i
            break
    return any(prefix in _norm(row) for row in area[start:])


def dialog_title(pane: str) -> str | None:
    """The title of the blocking dialog at the bottom of a plain pane capture; None if none."""
    lines = [row.rstrip() for row in pane.split("\n") if row.strip()]
    found = findings.dialog(lines, DIALOG_REGION_LINES)
    return found.line if found is not None else None

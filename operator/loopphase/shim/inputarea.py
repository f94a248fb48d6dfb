"""Is a typed text still waiting in the agent's input area? (pure)

Only the bottom lines of the pane count (REFERENCE.md lesson 2: never scrollback). Inside them,
the input line is the last line that starts with a prompt marker (">", "❯", "›", optionally
inside a "│" box border); the text is pending when its prefix appears on that line or below it.
Without a prompt marker (opencode), the text is pending when its prefix appears anywhere in the
bottom lines.
"""

from __future__ import annotations

import re

INPUT_AREA_LINES = 8
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

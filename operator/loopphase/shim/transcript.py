"""Copy the pane transcript (tmux pipe-pane output) to the shim's stdout, readable.

tmux appends the raw pane output to ``<state-dir>/transcript.log``; this task tails it, strips
terminal control sequences, keeps what a carriage return would leave on each line, drops blank
and immediately repeated lines, and prints the rest prefixed with ``[agent]`` (so
``kubectl logs`` shows the transcript).
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
from pathlib import Path
from typing import TextIO

log = logging.getLogger(__name__)

ANSI_RE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
CHUNK = 65536
SPINNER_RE = re.compile(r"[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏✻✽✶✳✢·]")
RECENT = 6


def clean_line(raw: str) -> str:
    text = ANSI_RE.sub("", raw)
    if "\r" in text:
        parts = [p for p in text.split("\r") if p.strip()]
        text = parts[-1] if parts else ""
    return "".join(ch for ch in text if ch >= " " or ch == "\t").rstrip()


class TranscriptTail:
    def __init__(self, path: Path, out: TextIO | None = None, *, from_end: bool = False) -> None:
        """``from_end``: skip what the file already holds (a previous shim's transcript in a
        reused state dir), so only this shim's agent output is printed."""
        self.path = path
        self.out = out or sys.stdout
        self.offset = 0
        if from_end:
            try:
                self.offset = path.stat().st_size
            except FileNotFoundError:
                self.offset = 0
        self.partial = ""
        self.recent: list[str] = []

    def read_new(self) -> list[str]:
        try:
            with self.path.open("rb") as fh:
                fh.seek(self.offset)
                data = fh.read(CHUNK)
        except FileNotFoundError:
            return []
        self.offset += len(data)
        text = self.partial + data.decode("utf-8", errors="replace")
        *complete, self.partial = text.split("\n")
        lines = []
        for raw in complete:
            line = clean_line(raw)
            # Spinner frames and footer redraws repeat with only a glyph changed: print once.
            key = SPINNER_RE.sub("", line).strip()
            if not key or key == ">" or key in self.recent:
                continue
            lines.append(line)
            self.recent = [*self.recent[-(RECENT - 1):], key]
        return lines

    async def run(self, interval: float = 0.5) -> None:
        while True:
            try:
                for line in self.read_new():
                    self.out.write(f"[agent] {line}\n")
                self.out.flush()
            except (OSError, ValueError) as exc:
                log.warning("transcript tail failed: %s", exc)
            await asyncio.sleep(interval)

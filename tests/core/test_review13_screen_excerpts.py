"""Review of issue 13 (faults 1 and 9): what an agent draws on its screen reaches status raw.

Screen excerpts (a dialog's title, a login or limit banner line) go from the pane into status
(``reason``, the NeedsAttention message, the limit window's excerpt), which ``loopphase status``
prints as is; the tick scrubs commit subjects and errors, never panes (the classifier needs
them raw). tmux drops C0/C1 controls from a capture but keeps bidi overrides, and any text the
agent prints stays text: a dialog titled "Trust ghp_… ‮txt.exe" put the token and a
right-to-left override into status. Before the fix the excerpt kept both.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from loopphase.core.screen import classify

TOKEN = "ghp_abcdefghijklmnopqrstuvwxyz0123456789"
DIALOG = (f"Do you trust the token {TOKEN} in \u202eexe.txt?\n"
          "❯ 1. Yes\n  2. No\nEnter to confirm · Esc to cancel\n")


def tmux_capture(text: str, tmp_path: Path) -> str:
    """``text`` printed in a real tmux pane, captured as the shim captures it."""
    script = tmp_path / "draw.txt"
    script.write_text(text, encoding="utf-8")
    sock = f"lp-r13-{uuid.uuid4().hex[:8]}"
    subprocess.run(["tmux", "-L", sock, "new-session", "-d", "-x", "160", "-y", "20",
                    f"cat {script}; sleep 30"], check=True, timeout=10)
    try:
        deadline = time.monotonic() + 10
        while True:
            pane = subprocess.run(["tmux", "-L", sock, "capture-pane", "-p", "-J"],
                                  capture_output=True, text=True, check=True, timeout=10).stdout
            if "Esc to cancel" in pane or time.monotonic() > deadline:
                return pane
            time.sleep(0.05)
    finally:
        subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True, timeout=10,
                       check=False)


def test_dialog_title_excerpt_masks_tokens_and_shows_bidi(tmp_path: Path) -> None:
    pane = tmux_capture(DIALOG, tmp_path)
    assert "\u202e" in pane and TOKEN in pane  # tmux passes both through
    reading = classify(pane, datetime(2026, 11, 30, 12, 0, tzinfo=UTC), UTC)
    assert reading.dialog is not None, pane
    excerpt = reading.dialog.excerpt
    assert "Do you trust" in excerpt
    assert TOKEN not in excerpt and "\u202e" not in excerpt, excerpt

"""Screens drawn by the real agent CLIs (tests/fixtures/screens/<cli>-<version>/) as table tests.

Each ``<name>.txt`` is a pane the shim captured from the real CLI in a real-CLI test
(tests/realcli/), and ``<name>.yaml`` says which CLI and version drew it, in which scenario,
when (``capturedAt`` is the ``now`` for classifying) and what the core must find
(``expected``: only the findings present; everything else must be absent; ``"*"`` means
present, whichever rule). ``knownIssue`` names a screen the core reads wrongly today:
``expected`` then holds the right reading and the case is an expected failure (strict: it
fails once the core gets it right, so the note is removed). Re-record with
``pytest tests/realcli --record-screens`` (docs/real-clis.md).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from loopphase.core.screen import classify

from tests.realcli.screens import observed

SCREENS = Path(__file__).resolve().parents[1] / "fixtures" / "screens"
CASES = sorted(SCREENS.glob("*/*.yaml"))


def test_there_are_real_screens() -> None:
    names = {p.stem for p in CASES}
    assert {"limit-five", "limit-key", "error-overloaded", "error-expired", "error-context",
            "error-credit"} <= names, names


@pytest.mark.parametrize("meta_path", CASES, ids=[f"{p.parent.name}/{p.stem}" for p in CASES])
def test_real_screen(meta_path: Path) -> None:
    meta = yaml.safe_load(meta_path.read_text(encoding="utf-8"))
    assert {"cli", "version", "scenario", "capturedAt", "tz", "expected"} <= set(meta), meta_path
    assert meta_path.parent.name == f"{meta['cli']}-{meta['version']}"
    pane = meta_path.with_suffix(".txt").read_text(encoding="utf-8")
    reading = classify(pane, datetime.fromisoformat(meta["capturedAt"]), ZoneInfo(meta["tz"]))
    got = observed(reading)
    expected = meta["expected"] or {}
    got = {k: ("*" if expected.get(k) == "*" else v) for k, v in got.items()}
    if meta.get("knownIssue"):
        if got == expected:
            pytest.fail(f"the core now reads this screen right: remove knownIssue ({meta['knownIssue']})")
        pytest.xfail(meta["knownIssue"])
    assert got == expected, meta["scenario"]

"""Recording real CLI screens as fixtures for the core's table test (tests/core/test_real_screens.py).

A fixture is ``tests/fixtures/screens/<cli>-<version>/<name>.txt`` (the pane, as the shim
captured it) plus ``<name>.yaml`` (cli, version, scenario, capturedAt, tz, expected). The
real-CLI tests call :meth:`ScreenRecorder.save` with what they asserted; the files are
(re)written only under ``pytest --record-screens`` (docs/real-clis.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml


@dataclass
class ScreenRecorder:
    root: Path
    record: bool

    def save(self, cli: str, version: str, name: str, pane: str, *, scenario: str,
             captured_at: datetime, tz: str, expected: dict[str, Any]) -> Path | None:
        """Write the fixture (only under --record-screens) with what the core found.

        A ``knownIssue`` (hand-written: the core reads this screen wrongly, ``expected`` holds
        the right reading) is carried over; its ``expected`` must then be re-written by hand
        for the new capture, or the table test reports the fixture (docs/real-clis.md)."""
        if not self.record:
            return None
        folder = self.root / f"{cli}-{version}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.txt").write_text(pane.rstrip("\n") + "\n", encoding="utf-8")
        meta = {"cli": cli, "version": version, "scenario": scenario,
                "capturedAt": captured_at.isoformat(), "tz": tz, "expected": expected}
        old_path = folder / f"{name}.yaml"
        if old_path.exists():
            old = yaml.safe_load(old_path.read_text(encoding="utf-8")) or {}
            if "knownIssue" in old:
                meta["knownIssue"] = old["knownIssue"]
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(meta, sort_keys=False, allow_unicode=True),
                                             encoding="utf-8")
        return folder / f"{name}.txt"


def observed(reading: Any) -> dict[str, Any]:
    """A classification as the fixtures' ``expected`` mapping (only the findings present).

    Keys: limit, reset (ISO UTC), kind, soft, active, fatal, waiting, and, where the core
    reports them, limitClass, login, dialog, contextFull, autoResume, transient (rule names).
    """
    def rule(match: Any) -> str | None:
        return None if match is None else match.rule

    out: dict[str, Any] = {
        "limit": rule(reading.limit),
        "reset": None if reading.reset is None else reading.reset.at.isoformat(),
        "kind": None if reading.reset is None else reading.reset.kind,
        "soft": rule(reading.soft_warning),
        "active": rule(reading.active),
        "fatal": rule(reading.fatal),
        "waiting": None if reading.waiting_until is None else reading.waiting_until.isoformat(),
        "limitClass": getattr(reading, "limit_class", None),
        "login": rule(getattr(reading, "login", None)),
        "dialog": rule(getattr(reading, "dialog", None)),
        "contextFull": rule(getattr(reading, "context_full", None)),
        "autoResume": rule(getattr(reading, "auto_resume", None)),
        "transient": rule(getattr(reading, "transient", None)),
    }
    return {key: value for key, value in out.items() if value is not None}

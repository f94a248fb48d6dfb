"""Fault: editing the spec did nothing, silently (the runner never re-read the YAML). Now a
running `loopphase run` applies a valid edit as a new generation (status.observedGeneration),
says what changed, and reports an invalid edit while keeping the last good spec."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from tests.runner.test_agents_cannot_be_lost import cli, wait_for, write_spec
from tests.runner.test_local_e2e import processes_under

pytestmark = pytest.mark.slow


class Output:
    """Collects a process's stdout lines in a thread (for polling with a deadline)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def text(self) -> str:
        return "\n".join(self.lines)


def status(state: Path) -> dict:
    try:
        return json.loads((state / "status.json").read_text())["status"]
    except (OSError, ValueError, KeyError):
        return {}


def test_edits_are_applied_as_generations_and_bad_edits_reported(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    manifest = yaml.safe_load(spec.read_text())
    manifest["spec"]["phases"].append({"id": "phase-2", "plan": "plans/PHASE-2.md", "statusFile": "STATUS-phase-2.md"})
    spec.write_text(yaml.safe_dump(manifest, sort_keys=False))
    state = tmp_path / ".loopphase" / "mine"
    runner = subprocess.Popen([sys.executable, "-m", "loopphase.cli", "run", str(spec), "--log-level", "error"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    out = Output(runner)
    try:
        wait_for(lambda: status(state).get("observedGeneration") == 1 and status(state).get("agents"), 60,
                 "the first generation observed")

        manifest["spec"]["startAt"] = "phase-2"
        manifest["spec"]["timing"]["stallIdle"] = "10m"
        spec.write_text(yaml.safe_dump(manifest, sort_keys=False))
        wait_for(lambda: status(state).get("current", {}).get("id") == "phase-2", 60, "the jump to phase-2")
        assert status(state)["observedGeneration"] == 2
        text = out.text()
        assert "spec changed on disk; applying it as generation 2:" in text
        assert '  spec.startAt: (unset) -> "phase-2"' in text and "  spec.timing.stallIdle: 300.0 -> 600.0" in text

        spec.write_text(spec.read_text().replace("phases:", "phases: []\n  phases:", 1))
        wait_for(lambda: "spec edit NOT applied" in out.text(), 30, "the bad edit reported")
        assert "still running generation 2" in out.text() and "duplicate key 'phases'" in out.text()
        assert runner.poll() is None and status(state)["observedGeneration"] == 2
    finally:
        runner.terminate()
        runner.wait(timeout=30)
        spec.write_text(yaml.safe_dump(manifest, sort_keys=False))
        cli("run", str(spec), "--stop")
    assert processes_under(tmp_path) == []

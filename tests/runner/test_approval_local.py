"""The approval gate in a real local run: DONE waits, `loopphase reject` tells the builder,
a new push waits again, `loopphase approve` advances."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from loopphase.runner.loop import Runner, TickReport
from loopphase.runner.specfile import load_spec

from tests.runner.test_local_e2e import QUIET_ADVERSARY, _write_spec, inputs, processes_under

pytestmark = pytest.mark.slow

BUILDER = """
phases:
  p1-handoff:
    - work: {seconds: 1}
    - append_done: {commit: "done(p1)", push: true}
    - wait_input: {match: "NOT approved", timeout: 120}
    - git: {commit: "p1: edge case tests", files: {"tests/edge.txt": "edge\\n"}, push: true}
    - idle: {seconds: 600}
  p2-limits:
    - work: {seconds: 1}
    - append_done: {commit: "done(p2)", push: true}
"""


def cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "loopphase.cli", *argv], capture_output=True,
                          text=True, timeout=60)


def test_reject_then_approve_in_a_real_run(tmp_path: Path) -> None:
    spec_path = _write_spec(tmp_path, BUILDER, QUIET_ADVERSARY)
    manifest = yaml.safe_load(spec_path.read_text())
    manifest["spec"]["phases"][0]["approval"] = "manual"
    spec_path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    state = tmp_path / "state"
    runner = Runner(load_spec(spec_path), state)
    awaiting_ticks: list[int] = []
    verdicts: list[str] = []

    def on_tick(report: TickReport) -> None:
        status = report.result.status
        current = status.current
        if current is None or current.awaiting_approval_since is None:
            return
        assert current.index == 0, "the phase never advances while it awaits approval"
        assert status.phase == "AwaitingApproval"
        awaiting_ticks.append(report.tick)
        if len(awaiting_ticks) == 3 and not verdicts:
            done = cli("reject", "--state-dir", str(state), "-m", "add a test for the edge case")
            assert done.returncode == 0, done.stderr
            verdicts.append("reject")
        elif current.rejected_sha is not None and len(verdicts) == 1:
            done = cli("approve", "--state-dir", str(state), "--phase", "p1-handoff")
            assert done.returncode == 0, done.stderr
            verdicts.append("approve")

    runner.on_tick = on_tick
    try:
        final = asyncio.run(asyncio.wait_for(runner.run(exit_on_complete=True), timeout=180))
    finally:
        asyncio.run(runner.stop_everything())
    assert verdicts == ["reject", "approve"]
    assert final.completed_at is not None
    kinds = [a.get("kind") for a in runner.store.read_actions() if a.get("kind")]
    flow = [k for k in kinds if k in {"awaiting-approval", "rejected", "approved", "advance", "complete"}]
    assert flow == ["awaiting-approval", "rejected", "awaiting-approval", "approved", "advance", "complete"]
    told = [r["text"] for r in inputs(state, "builder") if r["kind"] == "input" and "NOT approved" in r["text"]]
    assert len(told) == 1 and "add a test for the edge case" in told[0]
    assert processes_under(tmp_path) == []


def test_cli_errors_name_the_fix(tmp_path: Path) -> None:
    done = cli("approve", "--state-dir", str(tmp_path))
    assert done.returncode == 1 and "loopphase run" in done.stderr
    done = cli("reject", "--state-dir", str(tmp_path), "-m", "two\nlines")
    assert done.returncode == 2 and "--message" in done.stderr

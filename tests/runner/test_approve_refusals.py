"""`loopphase approve`/`reject` refuse a verdict nothing can act on (a new user's trial: approve
on a Complete loop with no gate printed "approve recorded" and exited 0)."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from loopphase.api.spec import LoopPhaseSpec
from loopphase.api.status import CurrentPhase, LoopPhaseStatus
from loopphase.runner.approve_cli import _nothing_to_decide
from loopphase.runner.store import StateStore

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
SPEC = LoopPhaseSpec.model_validate({
    "repo": {"url": "/tmp/nowhere.git"},
    "phases": [{"id": "p1", "plan": "p1.md", "statusFile": "S1.md"},
               {"id": "p2", "plan": "p2.md", "statusFile": "S2.md", "approval": "manual"},
               {"id": "p3", "plan": "p3.md", "statusFile": "S3.md"}],
})


def at(index: int, **kw: object) -> LoopPhaseStatus:
    return LoopPhaseStatus(current=CurrentPhase(index=index, id=SPEC.phases[index].id), **kw)


@pytest.mark.parametrize(("status", "phase", "refusal"), [
    (at(2, completed_at=NOW), "p3", "the loop is Complete"),
    (at(1), "p1", "phase p1 is already done"),
    (at(1), "p3", "phase p3 has no approval gate (spec.phases[2].approval is 'auto')"),
    (at(2), "p3", "has no approval gate"),
    (LoopPhaseStatus(), None, "no current phase yet"),
])
def test_verdicts_nothing_can_act_on_are_refused(status, phase, refusal) -> None:
    said = _nothing_to_decide(SPEC, at(0), "p2", "reject")
    assert said is not None and "a reject applies only to the phase awaiting approval" in said
    said = _nothing_to_decide(SPEC, status, phase, "approve")
    assert said is not None and refusal in said


@pytest.mark.parametrize("phase", ["p2"])
def test_a_gated_phase_may_be_approved_ahead_of_time(phase) -> None:
    assert _nothing_to_decide(SPEC, at(0), phase, "approve") is None
    assert _nothing_to_decide(SPEC, at(1), phase, "reject") is None


def test_the_cli_refuses_with_rc_1_and_records_nothing(tmp_path: Path) -> None:
    state = tmp_path / "state"
    store = StateStore(state)
    store.save(at(2, completed_at=NOW))
    done = subprocess.run([sys.executable, "-m", "loopphase.cli", "approve", "--state-dir",
                           str(state)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "the loop is Complete" in done.stderr, done
    assert not (state / "approvals.jsonl").exists() or not (state / "approvals.jsonl").read_text()

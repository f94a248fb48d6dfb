"""Issue 12 (new-user trial), in a real `loopphase run`: inserting a phase before the running
one stopped the running phase's agents and restarted them cold ("phase advance") and counted
the new phase done (1/2). Now the edit re-maps the phase by id: the same shims keep running,
nothing is stopped, and progress counts only verified DONEs (0/2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.runner.test_agents_cannot_be_lost import both_agents_up, cli, shims, wait_for, write_spec
from tests.runner.test_local_e2e import processes_under
from tests.runner.test_spec_edits import status

pytestmark = pytest.mark.slow


def test_a_phase_inserted_before_the_running_one_keeps_its_agents(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    manifest = yaml.safe_load(spec.read_text())
    state = tmp_path / ".loopphase" / "mine"
    runner = subprocess.Popen([sys.executable, "-m", "loopphase.cli", "run", str(spec), "--log-level", "error"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)
    try:
        wait_for(lambda: both_agents_up(state), 90, "both agents up")
        before = {role: sorted(p.pid for p in shims(state, role)) for role in ("builder", "adversary")}
        assert all(before.values()), before
        manifest["spec"]["phases"].insert(
            0, {"id": "phase-0", "plan": "plans/PHASE-2.md", "statusFile": "STATUS-phase-0.md"})
        spec.write_text(yaml.safe_dump(manifest, sort_keys=False))
        wait_for(lambda: status(state).get("observedGeneration") == 2, 60, "the edit applied")
        wait_for(lambda: any(h.get("kind") == "phases-edited" for h in status(state).get("history", [])),
                 30, "the edit logged")
        # The tick that applied the edit is the one that stopped the agents before the fix.
        wait_for(lambda: both_agents_up(state), 30, "agents still up")
        now = status(state)
        assert now["current"]["id"] == "phase-1" and now["current"]["index"] == 1
        assert now["progress"] == "0/2"
        kinds = [h.get("kind") for h in now.get("history", [])]
        assert "stop" not in kinds and "advance" not in kinds, now["history"]
        after = {role: sorted(p.pid for p in shims(state, role)) for role in ("builder", "adversary")}
        assert after == before
    finally:
        runner.terminate()
        runner.wait(timeout=30)
        cli("run", str(spec), "--stop")
    assert processes_under(tmp_path) == []

"""Two `loopphase run`s whose specs sit in one folder share account holds through
``.loopphase/account-holds/``: run a's builder limit holds run b's agents (issue 11).

The runners are real (state directory, spec file, git remote, the hold files); only their
agents are stand-ins (``ScreenRuntime``: panes set by the test, sends recorded), so no tmux."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from loopphase.api.status import LoopPhaseStatus
from loopphase.runner.loop import Runner
from loopphase.runner.secure import private_dir
from loopphase.runner.specfile import load_spec

from tests.controller.test_account_holds import ScreenRuntime
from tests.core.reconcile_helpers import PANE_ACTIVE, PANE_IDLE, banner
from tests.runner.test_examples import seed_repo

SCENARIO = "phases:\n  default:\n    - say: {text: hi}\n"


class StoppableRuntime(ScreenRuntime):
    async def stop_all(self) -> list[str]:
        return []  # no real agents to stop


def runner_for(root: Path, name: str, bare: Path, runtime: StoppableRuntime) -> Runner:
    manifest = {
        "apiVersion": "loopphase.dev/v1alpha1", "kind": "LoopPhase", "metadata": {"name": name},
        "spec": {"repo": {"url": str(bare)},
                 "phases": [{"id": "phase-1", "plan": "plans/PHASE-1.md",
                             "statusFile": "STATUS-phase-1.md"}],
                 "agents": {"builder": {"backend": "sim", "simScenario": SCENARIO}}},
    }
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(manifest), encoding="utf-8")
    runner = Runner(load_spec(path))
    private_dir(runner.state_dir)
    runner.runtime = runtime  # type: ignore[assignment]
    return runner


def test_two_local_runs_in_one_folder_share_an_account_hold(tmp_path: Path) -> None:
    bare = seed_repo(tmp_path / "git")
    a_agents = StoppableRuntime({"builder": PANE_ACTIVE, "adversary": PANE_ACTIVE})
    b_agents = StoppableRuntime({"builder": PANE_IDLE, "adversary": PANE_IDLE})
    a = runner_for(tmp_path, "a", bare, a_agents)
    b = runner_for(tmp_path, "b", bare, b_agents)
    now = datetime.now(UTC)

    async def ticks() -> tuple[LoopPhaseStatus, LoopPhaseStatus]:
        status_a = (await a.tick_once(LoopPhaseStatus(), now)).status
        status_b = (await b.tick_once(LoopPhaseStatus(), now)).status
        a_agents.panes["builder"] = banner((now + timedelta(hours=2)).strftime("%-I:%M%p").lower())
        status_a = (await a.tick_once(status_a, now + timedelta(seconds=5))).status
        status_b = (await b.tick_once(status_b, now + timedelta(seconds=6))).status
        return status_a, status_b

    status_a, status_b = asyncio.run(ticks())
    assert [h.started_by for h in status_a.holds] == ["builder"]
    assert (tmp_path / ".loopphase" / "account-holds" / "a.json").exists()
    [hold] = status_b.holds
    assert (hold.account, hold.loop_phase, hold.started_by) == ("local", "a", "builder")
    assert status_b.agents["builder"].state == status_b.agents["adversary"].state == "Limited"
    assert b_agents.sent == []
    asyncio.run(a.stop_everything())  # a's agents stopped: they hold nobody any more
    assert not (tmp_path / ".loopphase" / "account-holds" / "a.json").exists()

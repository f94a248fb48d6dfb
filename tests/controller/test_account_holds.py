"""Account holds across LoopPhases, at the controller tick: LoopPhase A's builder hits a hard
limit; LoopPhase B's agents on the same account are held (their pings queued, not typed) until
A's hold lifts. The registries: in memory (operator) and files (``loopphase run``)."""

from __future__ import annotations

import asyncio
import stat
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from loopphase.api.spec import Role
from loopphase.api.status import AccountHold, LoopPhaseStatus, PendingPing
from loopphase.controller.account_holds import MemoryHoldRegistry
from loopphase.controller.tick import run_tick
from loopphase.core import holds
from loopphase.core.observations import AgentObservation
from loopphase.runner.hold_files import FileHoldRegistry
from loopphase.runtime.base import HostResult, LaunchPlan

from tests.core.reconcile_helpers import PANE_ACTIVE, PANE_IDLE, T0, banner, make_spec


@dataclass
class ScreenRuntime:
    """An AgentRuntime whose agents show the panes the test sets; records what is sent."""

    panes: dict[Role, str]
    sent: list[tuple[Role, str]] = field(default_factory=list)

    async def observe(self, role: Role) -> AgentObservation:
        return AgentObservation(role=role, present=True, alive=True, pane=self.panes[role],
                                phase_index=0, started_at=T0, last_change_at=T0)

    async def send(self, role: Role, text: str) -> HostResult:
        self.sent.append((role, text))
        return HostResult(True, "submitted")

    async def start(self, plan: LaunchPlan) -> HostResult:
        return HostResult(False, "not expected in this test")

    restart = recreate = start

    async def stop(self, role: Role) -> HostResult:
        return HostResult(False, "not expected in this test")


def _tick(spec, status, runtime, now, registry, key):
    result = asyncio.run(run_tick(spec, status, runtime, None, now, role_prompt=lambda r: "",
                                  namespace="team", account_holds=registry.others(key, now)))
    registry.publish(key, holds.exported(spec, result.status, now), now)
    return result.status


def _with_ping(status: LoopPhaseStatus, now) -> LoopPhaseStatus:
    status.handoff.pending_pings.append(
        PendingPing(role="adversary", kind="claim", reason="claim commit abc", since=now))
    return status


def test_a_hard_limit_in_one_loopphase_holds_the_same_account_in_another():
    shared = {"builder": {"account": "team-max"}}
    spec_a, spec_b = make_spec(agents=shared), make_spec(agents=shared)
    registry = MemoryHoldRegistry()
    a = ScreenRuntime({"builder": PANE_ACTIVE, "adversary": PANE_ACTIVE})
    b = ScreenRuntime({"builder": PANE_IDLE, "adversary": PANE_IDLE})
    now = T0
    status_a = _tick(spec_a, LoopPhaseStatus(), a, now, registry, "team/a")
    status_b = _tick(spec_b, LoopPhaseStatus(), b, now, registry, "team/b")
    assert status_b.holds == []

    now += timedelta(seconds=5)
    a.panes["builder"] = banner("12:30pm")
    status_a = _tick(spec_a, status_a, a, now, registry, "team/a")
    assert [h.started_by for h in status_a.holds] == ["builder"]

    now += timedelta(seconds=5)
    status_b = _tick(spec_b, _with_ping(status_b, now), b, now, registry, "team/b")
    [hold] = status_b.holds
    assert (hold.account, hold.loop_phase, hold.started_by) == ("ns:team/team-max", "team/a", "builder")
    assert b.sent == []  # the claim ping stays queued
    assert status_b.agents["adversary"].state == "Limited"
    assert any(h.kind == "hold-armed" and "team/a:builder" in h.reason for h in status_b.history)
    # B never re-exports A's hold (no echo that would outlive A's window).
    assert registry.others("team/a", now) == ()

    now += timedelta(seconds=5)
    a.panes["builder"] = PANE_ACTIVE  # A's builder works again: its window and hold lift
    status_a = _tick(spec_a, status_a, a, now, registry, "team/a")
    assert status_a.holds == []
    status_b = _tick(spec_b, status_b, b, now, registry, "team/b")
    assert status_b.holds == []
    assert [(role, text.split(":")[0]) for role, text in b.sent] == [("adversary", "loopphase ping")]


def test_another_account_is_not_held():
    registry = MemoryHoldRegistry()
    registry.publish("team/a", [AccountHold(account="team-max", since=T0, until=T0 + timedelta(hours=1),
                                            started_by="builder")], T0)
    spec = make_spec(agents={"builder": {"account": "other"}})
    b = ScreenRuntime({"builder": PANE_IDLE, "adversary": PANE_IDLE})
    status = _tick(spec, _with_ping(LoopPhaseStatus(), T0), b, T0, registry, "team/b")
    assert status.holds == [] and [r for r, _ in b.sent] == ["adversary"]


def test_file_registry_round_trip_and_staleness(tmp_path: Path):
    registry = FileHoldRegistry(tmp_path / "account-holds", stale_after=60)
    hold = AccountHold(account="local", since=T0, until=T0 + timedelta(hours=1), started_by="builder",
                       rule="limit.claude-5h", excerpt="5-hour limit reached", limit_class="session")
    registry.publish("loop-a", [hold], T0)
    [seen] = registry.others("loop-b", T0 + timedelta(seconds=30))
    assert seen.loop_phase == "loop-a" and seen.excerpt == hold.excerpt
    assert registry.others("loop-a", T0) == ()  # never one's own
    assert registry.others("loop-b", T0 + timedelta(seconds=61)) == ()  # its publisher stopped
    (tmp_path / "account-holds" / "broken.json").write_text("{not json", encoding="utf-8")
    assert len(registry.others("loop-b", T0)) == 1  # an unreadable file is skipped, logged
    directory = tmp_path / "account-holds"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700  # private, like the run state
    assert stat.S_IMODE((directory / "loop-a.json").stat().st_mode) == 0o600
    registry.publish("loop-a", [], T0)
    assert registry.others("loop-b", T0) == ()

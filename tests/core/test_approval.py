"""The manual approval gate in the pure core: hold, approve, reject, stop or idle."""

from __future__ import annotations

from datetime import timedelta

from loopphase.api.status import LoopPhaseStatus
from loopphase.core.actions import SendText, StopAgent
from loopphase.core.observations import ApprovalRequest, Observations
from loopphase.core.reconcile import reconcile

from tests.core.reconcile_helpers import PANE_IDLE, T0, agent, git, make_spec

DONE = {"machine-docs/STATUS-p1.md": "# p1\n## DONE\n"}


def spec(agents: str = "idle"):
    return make_spec(phases=[
        {"id": "p1", "plan": "p.md", "statusFile": "STATUS-p1.md", "approval": "manual", "approvalAgents": agents},
        {"id": "p2", "plan": "p.md", "statusFile": "STATUS-p2.md"},
    ])


class Loop:
    def __init__(self, agents_mode: str = "idle") -> None:
        self.spec = spec(agents_mode)
        self.status = LoopPhaseStatus()
        self.now = T0

    def tick(self, head: str = "h1", files=None, approvals=(), seconds: float = 1.0, phase: int = 0):
        self.now += timedelta(seconds=seconds)
        obs = Observations(
            agents={r: agent(r, PANE_IDLE, phase=phase, changed=T0) for r in ("builder", "adversary")},  # type: ignore[misc]
            git=git(head, files=DONE if files is None else files), approvals=tuple(approvals),
        )
        actions, self.status = reconcile(self.spec, self.status, obs, self.now)
        return actions

    def kinds(self) -> list[str]:
        return [h.kind for h in self.status.history]


def test_done_waits_for_approval_with_agents_left_idle() -> None:
    loop = Loop()
    loop.tick(files={})
    loop.tick()
    assert loop.status.current.index == 0 and loop.status.current.awaiting_approval_since is not None
    assert loop.status.phase == "AwaitingApproval"
    cond = loop.status.condition("AwaitingApproval")
    assert cond is not None and cond.status == "True" and cond.reason == "PhaseDone"
    assert "loopphase.dev/approve=p1" in cond.message
    # Long past stallIdle: nothing is nudged, restarted or pinged while it waits.
    for _ in range(5):
        actions = loop.tick(seconds=600)
        assert [a for a in actions if a.role is not None] == []
    assert loop.kinds().count("awaiting-approval") == 1
    assert "advance" not in loop.kinds()


def test_approve_advances() -> None:
    loop = Loop()
    loop.tick(files={})
    loop.tick()
    loop.tick(approvals=[ApprovalRequest(id="a1", verdict="approve", phase="p1")])
    assert loop.status.current.id == "p2"
    kinds = loop.kinds()
    assert kinds.index("approved") < kinds.index("advance")
    assert loop.status.condition("AwaitingApproval").status == "False"
    # The same request again (the file or annotation stays; shells name the phase) changes nothing.
    before = loop.kinds()
    loop.tick(approvals=[ApprovalRequest(id="a1", verdict="approve", phase="p1")], phase=1)
    assert "approved" not in loop.kinds()[len(before):]


def test_reject_tells_the_builder_and_keeps_the_phase_until_a_new_push() -> None:
    loop = Loop()
    loop.tick(files={})
    loop.tick()
    actions = loop.tick(approvals=[ApprovalRequest(id="r1", verdict="reject", message="add\ntests\x1b[2J")])
    sends = [a for a in actions if isinstance(a, SendText)]
    assert [(a.role, a.rule) for a in sends] == [("builder", "approval.rejected")]
    assert "add tests" in sends[0].text and "\x1b" not in sends[0].text and "\n" not in sends[0].text
    assert loop.status.current.index == 0 and loop.status.current.awaiting_approval_since is None
    # The rejected DONE at the same head does not come back...
    for _ in range(3):
        loop.tick(approvals=[ApprovalRequest(id="r1", verdict="reject", message="add tests")])
    assert loop.kinds().count("awaiting-approval") == 1 and loop.kinds().count("rejected") == 1
    # ... a new push with DONE does.
    loop.tick(head="h2")
    assert loop.status.current.awaiting_approval_since is not None
    assert loop.kinds().count("awaiting-approval") == 2


def test_stop_mode_stops_the_agents() -> None:
    loop = Loop("stop")
    loop.tick(files={})
    actions = loop.tick() + loop.tick()
    assert sorted(a.role for a in actions if isinstance(a, StopAgent)) == ["adversary", "builder"]


def test_an_approval_for_a_later_phase_is_noted_ahead_a_reject_is_a_warning() -> None:
    """What the run says is what it does (a trial: "approve for phase 'p2' ignored" was logged,
    and the approval was applied when p2 came): approving a later phase is noted as ahead of
    time, never called ignored; a reject for a later phase is ignored with a warning."""
    loop = Loop()
    loop.tick(files={})
    loop.tick(approvals=[ApprovalRequest(id="x", verdict="approve", phase="p2"),
                         ApprovalRequest(id="y", verdict="reject", phase="p2", message="no")])
    ahead = [h for h in loop.status.history if h.rule == "approval.approve-ahead"]
    assert len(ahead) == 1 and ahead[0].kind == "approved" and "ahead of time" in ahead[0].reason
    warnings = [h for h in loop.status.history if h.kind == "warning"]
    assert len(warnings) == 1 and "reject for phase 'p2' ignored" in warnings[0].reason
    assert not any("ignored" in h.reason for h in ahead)
    assert not loop.status.current.approved


def test_an_approval_noted_ahead_applies_when_its_phase_is_current() -> None:
    loop = Loop()
    loop.spec = make_spec(phases=[
        {"id": "p1", "plan": "p.md", "statusFile": "STATUS-p1.md", "approval": "manual"},
        {"id": "p2", "plan": "p.md", "statusFile": "STATUS-p2.md", "approval": "manual"},
    ])
    ahead = ApprovalRequest(id="x", verdict="approve", phase="p2")
    loop.tick(files={}, approvals=[ahead])
    loop.tick(approvals=[ahead])  # p1 DONE: waits
    assert loop.status.current.awaiting_approval_since is not None
    loop.tick(approvals=[ahead, ApprovalRequest(id="a", verdict="approve")])
    loop.tick(approvals=[ahead])
    assert loop.status.current.id == "p2"
    both = {**DONE, "machine-docs/STATUS-p2.md": "# p2\n## DONE\n"}
    for _ in range(3):
        loop.tick(head="h2", files=both, approvals=[ahead], phase=1)
    assert loop.status.completed_at is not None
    assert loop.kinds().count("awaiting-approval") == 1  # p1 waited; p2 was approved ahead


def test_pre_approval_advances_on_done() -> None:
    loop = Loop()
    loop.tick(files={}, approvals=[ApprovalRequest(id="a", verdict="approve", phase="p1")])
    loop.tick()
    assert loop.status.current.id == "p2" and "awaiting-approval" not in loop.kinds()


def test_a_reject_message_that_failed_to_type_is_typed_again() -> None:
    from loopphase.core.reconcile import settle

    loop = Loop()
    loop.tick(files={})
    loop.tick()
    actions = loop.tick(approvals=[ApprovalRequest(id="r1", verdict="reject", phase="p1", message="fix it")])
    send = next(a for a in actions if isinstance(a, SendText))
    loop.status = settle(loop.spec, loop.status, [(send, False, "shim unreachable")], loop.now)
    again = [a for a in loop.tick() if isinstance(a, SendText)]
    assert [a.text for a in again] == [send.text]
    assert [a for a in loop.tick() if isinstance(a, SendText)] == []  # typed once it worked


def test_a_verified_done_clears_the_heal_ladders_so_the_wait_is_not_stalled() -> None:
    """A trial: both agents were nudged once, the builder pushed DONE, and Stalled=True
    (reason Healing, message 'adversary: ; builder: ') stayed for the whole wait."""
    from loopphase.api.status import HealState

    loop = Loop()
    loop.tick(files={})
    for role in ("builder", "adversary"):
        loop.status.agents[role].heal = HealState(tier=1, problem="stalled", last_action_at=loop.now)
    loop.tick()
    loop.tick()
    assert loop.status.current.awaiting_approval_since is not None
    assert all(a.heal.tier == 0 for a in loop.status.agents.values())
    assert loop.status.condition("Stalled").status == "False"


def test_a_stalled_message_names_the_heal_when_the_state_has_no_reason() -> None:
    from loopphase.api.status import AgentStatus, HealState
    from loopphase.core.conditions import _trouble

    agent = AgentStatus(state="Idle", heal=HealState(tier=1, problem="stalled", reason="idle 20m"))
    assert _trouble(agent) == "Idle, heal tier 1 (stalled: idle 20m)"

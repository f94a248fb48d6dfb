"""Account-wide holds (issue 11): a hard limit on one agent holds every agent of its account."""

from __future__ import annotations

from datetime import timedelta

import pytest
from loopphase.api.status import AccountHold, PendingPing
from loopphase.core import holds
from loopphase.core.observations import Observations
from loopphase.core.reconcile import reconcile

from tests.core.reconcile_helpers import (
    PANE_ACTIVE,
    PANE_IDLE,
    T0,
    World,
    agent,
    banner,
    make_spec,
    of_type,
)


def limited_builder(world, reset="12:30pm", adversary=PANE_IDLE, changed=None):
    return {"builder": agent("builder", banner(reset)),
            "adversary": agent("adversary", adversary, changed=changed or world.now)}


def queue(world, role):
    world.status.handoff.pending_pings.append(
        PendingPing(role=role, kind="claim", reason="claim commit abc", since=world.now))


def test_a_hard_limit_on_one_agent_holds_the_other_agent_of_the_account():
    world = World()
    world.started()
    armed = world.tick(limited_builder(world), advance=1)
    hold_events = [a for a in armed if type(a).__name__ == "EmitEvent" and a.kind == "hold-armed"]
    assert len(hold_events) == 1
    assert hold_events[0].reason.startswith("account local: builder's session limit")
    assert "holding adversary:" in hold_events[0].reason
    assert "5-hour limit reached" in hold_events[0].reason
    [hold] = world.status.holds
    assert (hold.account, hold.started_by) == ("local", "builder")
    assert hold.until == world.status.agents["builder"].limit.until
    queue(world, "adversary")
    seen = []
    changed = world.now
    for _ in range(6):  # 40 minutes idle: would be a nudge and a warm restart without the hold
        seen += world.tick(limited_builder(world, changed=changed), advance=400)
    adversary = world.status.agents["adversary"]
    assert adversary.state == "Limited" and "account hold" in adversary.reason
    assert [a for a in seen if a.role == "adversary" and type(a).__name__ != "EmitEvent"] == []
    assert [p.role for p in world.status.handoff.pending_pings] == ["adversary"]
    condition = world.status.condition("AccountHold")
    assert condition.status == "True" and "builder" in condition.message
    assert world.status.phase == "Limited"
    # The builder works again: the hold lifts, the queued ping goes out, the clock restarts.
    lifted = world.tick({"builder": agent("builder", PANE_ACTIVE),
                         "adversary": agent("adversary", PANE_IDLE, changed=changed)}, advance=10)
    assert [a.kind for a in lifted if type(a).__name__ == "EmitEvent" and a.kind.startswith("hold")] == ["hold-lifted"]
    assert [a.purpose for a in of_type(lifted, "SendText", "adversary")] == ["ping"]
    assert world.status.holds == []
    assert world.status.condition("AccountHold").status == "False"
    after = world.tick({"builder": agent("builder", PANE_ACTIVE),
                        "adversary": agent("adversary", PANE_IDLE, changed=changed)}, advance=60)
    assert of_type(after, "SendText", "adversary") == []  # the stall clock started over


def test_agents_on_different_accounts_are_not_held():
    world = World(spec=make_spec(agents={"builder": {"account": "team-a"},
                                         "adversary": {"account": "team-b"}}))
    world.started()
    world.tick(limited_builder(world), advance=1)
    queue(world, "adversary")
    acts = world.tick(limited_builder(world), advance=1)
    assert [a.purpose for a in of_type(acts, "SendText", "adversary")] == ["ping"]
    assert world.status.agents["adversary"].state != "Limited"
    assert [h.account for h in world.status.holds] == ["team-a"]


def test_a_held_agent_is_neither_restarted_nor_started():
    world = World()
    world.started()
    world.tick(limited_builder(world), advance=1)
    dead = {"builder": agent("builder", banner()), "adversary": agent("adversary", PANE_IDLE, alive=False)}
    acts = world.tick(dead, advance=300)
    gone = {"builder": agent("builder", banner()), "adversary": agent("adversary", None, present=False)}
    acts += world.tick(gone, advance=300)
    assert [a for a in acts if a.role == "adversary" and type(a).__name__ != "EmitEvent"] == []


def test_a_held_agent_shows_its_own_banner_and_keeps_its_own_window():
    world = World()
    world.started()
    world.tick(limited_builder(world, reset="12:30pm"), advance=1)
    world.tick({"builder": agent("builder", banner("12:30pm")),
                "adversary": agent("adversary", banner("11:15am"))}, advance=1)
    adversary = world.status.agents["adversary"]
    assert adversary.limit is not None
    # One shared window: the earliest reliable (parsed) reset of the account.
    [hold] = world.status.holds
    assert hold.until == adversary.limit.until < world.status.agents["builder"].limit.until
    assert hold.started_by == "builder"  # the first banner started it


def test_an_active_held_agent_finishes_its_turn_but_gets_no_ping():
    world = World()
    world.started()
    world.tick(limited_builder(world, adversary=PANE_ACTIVE), advance=1)
    queue(world, "adversary")
    acts = world.tick(limited_builder(world, adversary=PANE_ACTIVE), advance=1)
    assert world.status.agents["adversary"].state == "Active"
    assert of_type(acts, "SendText", "adversary") == []


def test_another_loopphases_hold_on_the_same_account_holds_this_one():
    world = World()
    world.started()
    other = AccountHold(account="local", since=T0, until=T0 + timedelta(hours=2),
                        started_by="builder", rule="limit.claude-5h",
                        excerpt="5-hour limit reached", limit_class="session",
                        loop_phase="team/other-loop")
    world.status.handoff.pending_pings.append(
        PendingPing(role="builder", kind="review", reason="r", since=world.now))
    obs = Observations({"builder": agent("builder", PANE_IDLE, changed=world.now),
                        "adversary": agent("adversary", PANE_IDLE, changed=world.now)},
                       account_holds=(other,))
    world.now += timedelta(seconds=1)
    actions, world.status = reconcile(world.spec, world.status, obs, world.now)
    assert of_type(actions, "SendText") == []
    [hold] = world.status.holds
    assert hold.loop_phase == "team/other-loop"
    armed = [a for a in actions if type(a).__name__ == "EmitEvent" and a.kind == "hold-armed"]
    assert armed and "team/other-loop:builder" in armed[0].reason
    # Never exported back: only this LoopPhase's own windows are.
    assert holds.exported(world.spec, world.status, world.now) == []


def test_a_transient_limit_holds_nobody():
    world = World()
    world.started()
    world.tick(limited_builder(world), advance=1)
    window = world.status.agents["builder"].limit
    world.status.agents["builder"].limit = window.model_copy(update={"limit_class": "transient"})
    queue(world, "adversary")
    acts = world.tick(limited_builder(world), advance=1)
    assert [a.purpose for a in of_type(acts, "SendText", "adversary")] == ["ping"]
    assert world.status.holds == []


@pytest.mark.parametrize(("agents", "namespace", "expected"), [
    ({}, None, "local"),
    ({"builder": {"account": "team-max-1"}}, None, "team-max-1"),
    ({"builder": {"env": [{"name": "ANTHROPIC_API_KEY",
                           "secretKeyRef": {"name": "claude-key", "key": "k"}}]}},
     "team", "secret:team/claude-key"),
    ({}, "team", None),
])
def test_the_default_account(agents, namespace, expected):
    spec = make_spec(agents=agents)
    assert holds.account_of(spec, "builder", namespace) == expected
    assert holds.account_of(spec, "adversary", namespace) == expected  # it defaults to the builder's


def test_a_bad_account_name_is_refused_naming_the_field():
    with pytest.raises(ValueError, match="account"):
        make_spec(agents={"builder": {"account": "two words"}})


def test_another_loopphases_hold_ends_at_its_until_even_if_never_lifted():
    """A Complete (or dead) exporter never lifts its hold: past ``until`` this LoopPhase's
    agents are no longer held (a trial: held two minutes past until, nothing started)."""
    world = World()
    world.started()
    other = AccountHold(account="local", since=T0, until=world.now + timedelta(minutes=2),
                        started_by="builder", rule="limit.claude-5h", excerpt="5-hour limit",
                        limit_class="session", loop_phase="team/finished-loop")

    def tick(seconds):
        obs = Observations({"builder": agent("builder", PANE_IDLE, changed=world.now),
                            "adversary": agent("adversary", PANE_IDLE, changed=world.now)},
                           account_holds=(other,))
        world.now += timedelta(seconds=seconds)
        return reconcile(world.spec, world.status, obs, world.now)

    _, world.status = tick(60)
    assert [h.loop_phase for h in world.status.holds] == ["team/finished-loop"]
    actions, world.status = tick(61)  # past until; the other run still exports it
    assert world.status.holds == []
    assert any(type(a).__name__ == "EmitEvent" and a.kind == "hold-lifted" for a in actions)


def test_a_complete_loopphase_exports_no_hold():
    world = World()
    world.started()
    world.tick(limited_builder(world), advance=1)
    assert holds.exported(world.spec, world.status, world.now) != []
    world.status.completed_at = world.now
    assert holds.exported(world.spec, world.status, world.now) == []


def test_a_limited_agent_without_a_process_is_not_ready():
    """Ready counted Limited agents whose host was gone (never started during a hold) as
    running: READY 2/2 with no agent process."""
    world = World()
    world.started()
    world.tick(limited_builder(world), advance=1)
    assert world.status.ready == "2/2"
    gone = {"builder": agent("builder", banner("12:30pm"), alive=False),
            "adversary": agent("adversary", PANE_IDLE, changed=world.now)}
    world.tick(gone, advance=5)
    builder = world.status.agents["builder"]
    assert builder.state == "Limited" and builder.reason.startswith("agent not running")
    assert world.status.ready == "1/2"

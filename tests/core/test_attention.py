"""NeedsAttention (login, dialog, spend limit, open circuit), a full context, the CLI's own
automatic resume: what the core does with each finding (issue 11, faults 3, 4, 6, 7, 8).

Screens are issue 11's minimal inputs, read by the real screen classifier.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from loopphase.api.status import PendingPing
from loopphase.core.observations import AgentObservation, HookEvent

from tests.core.reconcile_helpers import (
    DIALOG_TITLE,
    PANE_ACTIVE,
    PANE_CONTEXT_FULL,
    PANE_DIALOG,
    PANE_IDLE,
    PANE_LOGIN,
    PANE_SPEND,
    T0,
    World,
    agent,
    auto_resume,
    both,
    make_spec,
    of_type,
)

HEALS = ("RestartAgent", "RecreateHost", "StartAgent", "StopAgent")


def side_effects(actions, role="builder"):
    return [a for a in actions if a.role == role and type(a).__name__ != "EmitEvent"]


def warnings(actions, kind):
    return [a for a in actions if type(a).__name__ == "EmitEvent" and a.kind == kind]


def queue_ping(world, role="builder"):
    world.status.handoff.pending_pings.append(
        PendingPing(role=role, kind="review", reason="review commit abc", since=world.now))


def screens(builder, adversary=PANE_ACTIVE, **kw):
    return {"builder": agent("builder", builder, **kw), "adversary": agent("adversary", adversary, **kw)}


# -- NeedsAttention: a table of the causes a restart cannot fix --------------------------------


@pytest.mark.parametrize(("pane", "reason", "cause"), [
    (PANE_LOGIN, "LoginRequired", "Invalid API key · Please run /login"),
    (PANE_DIALOG, "Dialog", DIALOG_TITLE),
    (PANE_SPEND, "SpendLimit", "You've hit your monthly spend limit."),
])
def test_needs_attention_never_heals_and_announces_once(pane, reason, cause):
    world = World()
    world.started()
    queue_ping(world)
    seen = []
    for _ in range(15):  # 100 minutes: the stall ladder would have run to the circuit
        seen += world.tick(screens(pane, changed=T0), advance=400)
    builder = world.status.agents["builder"]
    assert builder.state == "NeedsAttention"
    assert builder.attention is not None and builder.attention.reason == reason
    assert not [a for a in seen if a.role == "builder" and type(a).__name__ in HEALS]
    assert not [a for a in of_type(seen, "SendText", "builder") if a.purpose in ("ping", "nudge")]
    assert len(warnings(seen, "needs-attention")) == 1
    assert warnings(seen, "needs-attention")[0].warning
    condition = world.status.condition("NeedsAttention")
    assert condition.status == "True" and condition.reason == reason
    assert "builder" in condition.message and cause in condition.message
    assert world.status.phase == "NeedsAttention"
    assert world.status.needs_attention == f"builder:{reason}"
    assert [p.role for p in world.status.handoff.pending_pings] == ["builder"]  # still queued


@pytest.mark.parametrize("pane", [PANE_LOGIN, PANE_DIALOG])
def test_supervision_resumes_by_itself_when_the_screen_shows_work(pane):
    world = World()
    world.started()
    world.tick(screens(pane, changed=T0), advance=10)
    queue_ping(world)
    acts = world.tick(screens(PANE_ACTIVE), advance=10)
    builder = world.status.agents["builder"]
    assert builder.state == "Active" and builder.attention is None
    assert len(warnings(acts, "attention-cleared")) == 1
    assert [a.purpose for a in of_type(acts, "SendText", "builder")] == ["ping"]
    assert world.status.condition("NeedsAttention").status == "False"
    # ...and the stall clock starts over: idle after the login was fixed is not yet a stall.
    acts = world.tick(screens(PANE_IDLE, changed=world.now), advance=10)
    acts += world.tick(screens(PANE_IDLE, changed=world.now - timedelta(seconds=10)), advance=200)
    assert side_effects(acts) == []


@pytest.mark.parametrize("error_type", [
    "authentication_failed", "unauthorized", "oauth_token_expired", "invalid_api_key", "HTTP 401"])
def test_a_stop_failure_hook_with_authentication_failed_is_a_login(error_type):
    """One path reads a hook's failed login (core/hooks.py, into the reading): every spelling
    of a refused credential, including a bare 401, is LoginRequired with the hook's rule."""
    world = World()
    world.started()
    failed = HookEvent(name="StopFailure", time=world.now + timedelta(seconds=5),
                       error_type=error_type, message="the request was refused")
    obs = AgentObservation(role="builder", present=True, alive=True, pane=PANE_IDLE,
                           phase_index=0, started_at=T0, last_change_at=T0, hook_events=(failed,))
    seen = []
    for _ in range(8):
        seen += world.tick({"builder": obs, "adversary": agent("adversary", PANE_ACTIVE)}, advance=400)
    attention = world.status.agents["builder"].attention
    assert attention is not None and attention.reason == "LoginRequired"
    assert "the request was refused" in attention.message
    assert attention.rule == "hook.authentication-failed" and error_type in attention.excerpt
    assert side_effects(seen) == []
    # A clean Stop after it (the user logged in and the agent answered) supersedes it.
    ok = HookEvent(name="Stop", time=world.now)
    cleared = AgentObservation(**{**obs.__dict__, "hook_events": (failed, ok)})
    world.tick({"builder": cleared, "adversary": agent("adversary", PANE_ACTIVE)}, advance=1)
    assert world.status.agents["builder"].attention is None


def test_nothing_is_typed_into_a_dialog_even_when_a_probe_is_due():
    world = World()
    world.started()
    world.tick(screens("Working\n\n5-hour limit reached ∙ resets 10:20am\n> "), advance=60)
    assert world.status.agents["builder"].limit is not None
    queue_ping(world)
    seen = []
    for _ in range(6):  # far past the window's end: a probe would be due
        seen += world.tick(screens(PANE_DIALOG), advance=600)
    assert of_type(seen, "SendText", "builder") == []
    assert world.status.agents["builder"].attention.reason == "Dialog"
    assert DIALOG_TITLE in world.status.agents["builder"].attention.message


def test_a_spend_limit_holds_and_probes_but_never_restarts():
    world = World()
    world.started()
    seen = []
    for _ in range(30):  # five hours
        seen += world.tick(screens(PANE_SPEND, changed=T0), advance=600)
    builder = world.status.agents["builder"]
    assert builder.attention.reason == "SpendLimit" and builder.limit is not None
    assert not [a for a in seen if a.role == "builder" and type(a).__name__ in HEALS]
    assert {a.purpose for a in of_type(seen, "SendText", "builder")} <= {"probe"}


def test_an_open_circuit_is_needs_attention_circuit_open_until_the_agent_works():
    world = World()
    world.started()
    stuck = both(PANE_IDLE, changed=world.now)
    world.tick(stuck, advance=1)
    for _ in range(12):
        world.tick(stuck, advance=400)
    builder = world.status.agents["builder"]
    assert builder.heal.circuit_open
    assert builder.state == "NeedsAttention" and builder.attention.reason == "CircuitOpen"
    assert world.status.condition("NeedsAttention").reason == "CircuitOpen"
    # One warning for it: the circuit-open Event (no second needs-attention one).
    assert not [h for h in world.status.history if h.kind == "needs-attention" and h.role == "builder"]
    acts = world.tick(both(PANE_ACTIVE), advance=1)
    assert world.status.agents["builder"].attention is None
    assert warnings(acts, "attention-cleared")


def test_cannot_start_shows_generically_and_clears_when_the_host_can_start():
    """CannotStart comes from the host (``AgentObservation.cannot_start``, see the local
    runtime); it shows in the same NeedsAttention condition and clears once the host can start."""
    world = World()
    world.started()
    cause = "builder: the claude CLI is not installed on this host"
    blocked = screens(PANE_IDLE, changed=world.now)
    blocked["builder"] = dataclasses.replace(blocked["builder"], cannot_start=cause)
    world.tick(blocked, advance=1)
    condition = world.status.condition("NeedsAttention")
    assert condition.status == "True" and condition.reason == "CannotStart"
    assert "not installed" in condition.message
    assert world.status.agents["builder"].attention.reason == "CannotStart"
    world.tick(screens(PANE_IDLE, changed=world.now), advance=1)
    assert world.status.agents["builder"].attention is None
    assert world.status.condition("NeedsAttention").status == "False"


# -- a full context ------------------------------------------------------------------------------


def test_context_full_compacts_once_then_restarts_cold():
    world = World()
    world.started()
    first = world.tick(screens(PANE_CONTEXT_FULL, changed=T0), advance=1)
    assert [(a.text, a.purpose) for a in of_type(first, "SendText", "builder")] == [("/compact", "compact")]
    seen = []
    for _ in range(3):
        seen += world.tick(screens(PANE_CONTEXT_FULL, changed=T0), advance=15)
    assert side_effects(seen) == []  # no second /compact, no restart while it may still run
    later = world.tick(screens(PANE_CONTEXT_FULL, changed=T0), advance=20)
    restarts = of_type(later, "RestartAgent", "builder")
    assert [(r.mode, r.rule) for r in restarts] == [("cold", "heal.context-full")]


def test_context_full_without_compact_restarts_cold_at_once():
    world = World(spec=make_spec(heal={"compactOnContextFull": False}))
    world.started()
    acts = world.tick(screens(PANE_CONTEXT_FULL, changed=T0), advance=1)
    assert of_type(acts, "SendText", "builder") == []
    assert [r.mode for r in of_type(acts, "RestartAgent", "builder")] == ["cold"]


def test_a_context_full_agent_that_dies_is_never_restarted_warm():
    world = World()
    world.started()
    world.tick(screens(PANE_CONTEXT_FULL, changed=T0), advance=1)  # /compact typed
    dead = {"builder": agent("builder", PANE_CONTEXT_FULL, alive=False),
            "adversary": agent("adversary", PANE_ACTIVE)}
    acts = world.tick(dead, advance=120)
    modes = [a.mode for a in acts if a.role == "builder" and type(a).__name__ in HEALS[:3]]
    assert modes and set(modes) == {"cold"}


def test_compaction_that_worked_allows_warm_again():
    world = World()
    world.started()
    world.tick(screens(PANE_CONTEXT_FULL, changed=T0), advance=1)
    world.tick(screens(PANE_ACTIVE), advance=20)  # "Compacting conversation…" then work
    assert world.status.agents["builder"].context_full_since is None
    dead = {"builder": agent("builder", PANE_IDLE, alive=False), "adversary": agent("adversary", PANE_ACTIVE)}
    acts = world.tick(dead, advance=120)
    assert [a.mode for a in of_type(acts, "RestartAgent", "builder")] == ["warm"]


# -- the CLI's own automatic resume ------------------------------------------------------------


def _resume_run(pane_at) -> list:
    world = World()
    world.started()  # 10:00:01
    world.tick(screens(pane_at()), advance=60)  # armed: reset 10:40, window until 10:40:45
    seen = []
    for _ in range(60):  # 10:01 .. 10:51 in 50 s steps
        acts = world.tick(screens(pane_at()), advance=50)
        seen += [(world.now, a) for a in of_type(acts, "SendText", "builder")]
    return seen


def test_no_probe_while_the_cli_promises_its_own_resume_until_the_grace_ran_out():
    probes = _resume_run(lambda: auto_resume("10:40am", "10:41am"))
    reset = T0.replace(minute=40)
    assert probes, "a probe must follow once the grace is over and nothing resumed"
    first_at, first = probes[0]
    assert first.purpose == "probe"
    assert first_at >= reset + timedelta(seconds=180)  # timing.autoResumeGrace


def test_without_the_promise_the_probe_comes_at_the_window_end():
    probes = _resume_run(lambda: "Working\n\n5-hour limit reached ∙ resets 10:40am\n> ")
    reset = T0.replace(minute=40)
    assert probes and probes[0][0] < reset + timedelta(seconds=180)


# -- transient throttling (fault 10): no window, no hold, no heal while the CLI retries ----------

PANE_RETRYING = ("Working\n\n  ⎿  API Error (529 Overloaded) · Retrying in 12 seconds… (attempt 3/10)\n"
                 "✻ Thinking… (esc to interrupt)\n> ")
PANE_GAVE_UP = ('Working\n\n  ⎿  API Error: 529 {"type":"error","error":{"type":"overloaded_error",'
                '"message":"Overloaded"}}\n> ')


def test_transient_throttling_is_no_window_and_holds_nobody_and_is_nudged_only_once_idle():
    world = World()
    world.started()
    seen = []
    for _ in range(5):  # retrying for 25 minutes: working, whatever the error line says
        seen += world.tick(screens(PANE_RETRYING, PANE_ACTIVE), advance=300)
    assert world.status.agents["builder"].limit is None and world.status.holds == []
    assert side_effects(seen) == []
    queue_ping(world, "adversary")
    gave_up = world.now
    acts = world.tick(screens(PANE_GAVE_UP, PANE_ACTIVE, changed=gave_up), advance=10)
    assert [a.purpose for a in of_type(acts, "SendText", "adversary")] == ["ping"]  # not held
    acts = world.tick(screens(PANE_GAVE_UP, PANE_ACTIVE, changed=gave_up), advance=300)
    assert [a.purpose for a in of_type(acts, "SendText", "builder")] == ["nudge"]

"""Property tests of the core's invariants over random observation sequences (hypothesis).

Each example drives reconcile through a random run of screens, host states, pushes and clock
steps, carrying the status forward as a shell would, and checks after every tick:
- no kill/restart/recreate of an agent while its limit window is open (REFERENCE lesson 3);
- every typed text classifies as nothing (lesson 1);
- at most one start/restart/recreate per role per tick (lesson 6);
- the phase index never skips or goes backwards without an explicit spec change;
- a circuit-open agent gets no heal actions;
- no kill/restart/recreate of an agent whose screen shows a login, a dialog or a spend limit
  (NeedsAttention), and no text at all typed into a dialog (issue 11);
- no heal, nudge, ping or /compact for an agent that another agent of its account holds
  (account holds, issue 11);
- reconcile is idempotent: the same observations again yield no new side effects.
"""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from loopphase.core.actions import RecreateHost, RestartAgent, SendText, StartAgent, StopAgent
from loopphase.core.observations import AgentObservation, HookEvent, Observations
from loopphase.core.reconcile import reconcile
from loopphase.core.screen import classify

from tests.core.reconcile_helpers import (
    PANE_ACTIVE,
    PANE_CONTEXT_FULL,
    PANE_DIALOG,
    PANE_FATAL,
    PANE_IDLE,
    PANE_LOGIN,
    PANE_SPEND,
    T0,
    World,
    auto_resume,
    banner,
    git,
    waiting,
)

SCREENS = ["active", "idle", "banner", "stale-banner", "fatal", "wait", "dead", "absent", "unreachable",
           "pending", "login", "dialog", "spend", "context-full", "auto-resume",
           # limit classes (issue 11): weekly/model resets hours ahead, a credit refusal with no
           # reset, transient throttling (no window), a limit only a StopFailure hook reports
           "weekly", "model", "credit", "transient", "hook-weekly"]
# Screens that put an agent in NeedsAttention: nothing a restart could fix.
ATTENTION_SCREENS = {"login", "dialog", "spend", "credit"}
HEAL_TYPES = (RestartAgent, RecreateHost)


def screen(kind: str, now, phase: int, role: str) -> AgentObservation:
    base = {"role": role, "present": True, "alive": True, "phase_index": phase, "started_at": T0}
    panes = {
        "active": PANE_ACTIVE,
        "idle": PANE_IDLE,
        "banner": banner((now + timedelta(minutes=20)).strftime("%-I:%M%p").lower()),
        "stale-banner": banner("9:00am"),
        "fatal": PANE_FATAL,
        "wait": waiting(now + timedelta(minutes=10)),
        "login": PANE_LOGIN,
        "dialog": PANE_DIALOG,
        "spend": PANE_SPEND,
        "context-full": PANE_CONTEXT_FULL,
        "auto-resume": auto_resume((now + timedelta(minutes=3)).strftime("%-I:%M%p").lower()),
    }
    def at(hours: float) -> str:
        return (now + timedelta(hours=hours)).strftime("%-I:%M%p").lower()

    panes.update({
        "weekly": f"Stopped.\n  ⎿  You've hit your team's weekly usage limit · resets {at(9)} (UTC)\n> ",
        "model": f"Stopped.\n  ⎿  Opus limit reached ∙ resets {at(3)} (UTC)\n> ",
        "credit": "Stopped.\n  ⎿  Credit balance too low · Add funds: https://platform.claude.com/settings/billing\n> ",
        "transient": "  ⎿  API Error: Repeated 529 Overloaded errors. The API is at capacity.\n> ",
    })
    if kind == "hook-weekly":
        message = f"You've hit your weekly limit · resets {at(10)} (UTC)"
        event = HookEvent("StopFailure", time=now, error_type="rate_limit", message=message)
        return AgentObservation(**base, pane=PANE_IDLE, hook_events=(event,))
    if kind == "dead":
        return AgentObservation(**{**base, "alive": False})
    if kind == "absent":
        return AgentObservation(role=role, present=False)
    if kind == "unreachable":
        return AgentObservation(**{**base, "alive": False, "error": "connection refused"})
    if kind == "pending":  # a Pending pod (image pull): created "now", as a new host would be
        return AgentObservation(**{**base, "alive": False, "started_at": now, "host_pending": True,
                                   "error": "pod has no IP yet (Pending: ContainerCreating)"})
    return AgentObservation(**base, pane=panes[kind])


step = st.fixed_dictionaries({
    "builder": st.sampled_from(SCREENS),
    "adversary": st.sampled_from(SCREENS),
    "advance": st.sampled_from([1, 5, 30, 61, 300, 900, 3600]),
    "push": st.sampled_from([None, None, None, "claim(g): x", "review(g): PASS", "done", "inbox"]),
    "stale_phase": st.booleans(),
})


def kills_in_open_windows(before, actions, now, screens) -> list:
    """Heal/stop/nudge actions on a role whose limit window is open.

    A window counts as open for a role that is not visibly working this tick (visible work
    lifts a window: that agent is no longer limited).
    """
    open_windows = {
        r for r, a in before.agents.items()
        if a.limit is not None and now < a.limit.until and screens.get(r) != "active"
    }
    return [
        a for a in actions
        if a.role in open_windows and (
            isinstance(a, HEAL_TYPES)
            or (isinstance(a, StopAgent) and a.rule == "phase.transition")
            or (isinstance(a, SendText) and a.purpose == "nudge")
        )
    ]


def kills_while_held(after, actions, now, screens) -> list:
    """Heals of an agent another agent of the same account holds (its window open after this
    tick), unless that agent is visibly working (it finishes its turn; nothing is typed)."""
    open_accounts: dict[str, set[str]] = {}
    for role, agent in after.agents.items():
        if agent.account and agent.limit is not None and agent.limit.limit_class != "transient":
            open_accounts.setdefault(agent.account, set()).add(role)
    out = []
    for action in actions:
        agent = after.agents.get(action.role) if action.role else None
        if agent is None or screens.get(action.role) == "active" or not agent.account:
            continue
        holders = open_accounts.get(agent.account, set()) - {action.role}
        if holders and (isinstance(action, HEAL_TYPES) or (
                isinstance(action, SendText) and action.purpose in ("nudge", "ping", "compact"))):
            out.append(action)
    return out


def attention_violations(actions, screens, stale: bool) -> list:
    """Heals of an agent showing a login/dialog/spend screen; any text typed into a dialog."""
    out = []
    for action in actions:
        shown = screens.get(action.role)
        if shown in ATTENTION_SCREENS and not stale and isinstance(action, HEAL_TYPES):
            out.append(action)
        if shown == "dialog" and isinstance(action, SendText):
            out.append(action)
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=3, max_size=25))
def test_invariants_hold_over_random_runs(steps):
    world = World()
    utc = ZoneInfo("UTC")
    head = 0
    for item in steps:
        world.now += timedelta(seconds=item["advance"])
        before = world.status
        index = before.current.index if before.current else 0
        phase = max(index - 1, 0) if item["stale_phase"] else index
        agents = {r: screen(item[r], world.now, phase, r) for r in ("builder", "adversary")}
        files = {}
        subjects = ()
        if item["push"] is not None:
            head += 1
            if item["push"] == "done":
                status_file = world.spec.phases[min(index, 2)].status_file
                files = {f"machine-docs/{status_file}": "## DONE\n"}
            elif item["push"] == "inbox":
                files = {"machine-docs/ADVERSARY-INBOX.md": f"note {head}"}
            else:
                subjects = (item["push"],)
        obs = Observations(agents, git(f"h{head}", *subjects, files=files))
        actions, after = reconcile(world.spec, before, obs, world.now)

        assert kills_in_open_windows(before, actions, world.now, item) == []
        assert attention_violations(actions, item, item["stale_phase"]) == []
        if not item["stale_phase"]:
            assert kills_while_held(after, actions, world.now, item) == []
        for action in actions:
            if isinstance(action, SendText):
                reading = classify(action.text + "\n> ", world.now, utc)
                assert reading.limit is reading.fatal is reading.active is None, action.text
                assert reading.waiting_until is None, action.text
            agent_before = before.agents.get(action.role) if action.role else None
            if agent_before is not None and agent_before.heal.circuit_open:
                assert not isinstance(action, HEAL_TYPES), action
        per_role = [a.role for a in actions if isinstance(a, StartAgent | RestartAgent | RecreateHost)]
        assert len(per_role) == len(set(per_role)), actions
        if before.current is not None and after.current is not None:
            assert after.current.index in (before.current.index, before.current.index + 1)

        again, after_again = reconcile(world.spec, after, obs, world.now)
        side_effects = [a for a in again if type(a).__name__ != "EmitEvent"]
        assert side_effects == [], side_effects
        world.status = after


def test_the_window_check_flags_a_restart_inside_an_open_window():
    """Guard the guard: the check the property relies on reports a kill in a window."""
    world = World()
    world.tick({"builder": screen("absent", world.now, 0, "builder"),
                "adversary": screen("absent", world.now, 0, "adversary")})
    world.tick({"builder": screen("banner", world.now, 0, "builder"),
                "adversary": screen("active", world.now, 0, "adversary")}, advance=120)
    window = world.status.agents["builder"].limit
    assert window is not None and world.now < window.until
    restart = RestartAgent(role="builder", rule="heal.stalled", reason="x", phase_index=0, mode="warm")
    screens = {"builder": "idle", "adversary": "active"}
    assert kills_in_open_windows(world.status, [restart], world.now, screens) == [restart]
    # ...and not once the window is over, nor for the other role.
    assert kills_in_open_windows(world.status, [restart], window.until, screens) == []
    other = RestartAgent(role="adversary", rule="heal.stalled", reason="x", phase_index=0, mode="warm")
    assert kills_in_open_windows(world.status, [other], world.now, screens) == []


def test_every_limit_screen_of_the_property_opens_a_window_of_its_class():
    """Guard the property: the new class screens do open windows (and transient does not)."""
    expected = {"weekly": "weekly", "model": "model", "spend": "spend", "credit": "spend",
                "hook-weekly": "weekly", "banner": "session", "transient": None}
    for kind, limit_class in expected.items():
        world = World()
        world.tick({"builder": screen("absent", world.now, 0, "builder"),
                    "adversary": screen("absent", world.now, 0, "adversary")})
        world.tick({"builder": screen(kind, world.now + timedelta(seconds=120), 0, "builder"),
                    "adversary": screen("active", world.now, 0, "adversary")}, advance=120)
        window = world.status.agents["builder"].limit
        if limit_class is None:
            assert window is None, kind
        else:
            assert window is not None and window.limit_class == limit_class, (kind, window)
            assert world.now < window.until, kind


def test_the_attention_check_flags_a_restart_and_a_send_into_a_dialog():
    """Guard the guard: the property's NeedsAttention check reports what it must."""
    restart = RestartAgent(role="builder", rule="heal.stalled", reason="x", phase_index=0, mode="warm")
    ping = SendText(role="builder", rule="handoff.review", reason="x", text="hi", purpose="ping")
    assert attention_violations([restart], {"builder": "login"}, False) == [restart]
    assert attention_violations([ping], {"builder": "dialog"}, False) == [ping]
    assert attention_violations([ping], {"builder": "login"}, False) == []
    assert attention_violations([restart], {"builder": "idle"}, False) == []

"""Limit windows by class (issue 11 faults 2, 7, 9, 10): the reset horizon belongs to the
class, spend limits probe slowly and never restart, a StopFailure hook's message is read by the
same classifier, and transient throttling is never a window. Each window says which rule
decided it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from loopphase.api.spec import TimingSpec
from loopphase.core.limits import WINDOW_RULES, decide, step_limit
from loopphase.core.observations import HookEvent
from loopphase.core.screen import classify

from tests.core.reconcile_helpers import PANE_ACTIVE, PANE_IDLE, World, agent, of_type

HEAL = ("RestartAgent", "RecreateHost", "StartAgent")
SINGAPORE_11 = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)  # 11:00 in Singapore


def _screen(line: str) -> str:
    return f"Working on gate 2\n\n  ⎿  {line}\n> "


def _armed(world: World) -> str:
    return [h.reason for h in world.status.history if h.kind == "limit-armed"][-1]


# ── fault 2: a real reset 6-24 h ahead is the window ────────────────────────────────────────


def test_weekly_reset_ten_hours_ahead_holds_until_then_with_no_probe_and_no_warning():
    world = World(now=SINGAPORE_11 - timedelta(seconds=1))
    world.started()
    pane = _screen("You've hit your weekly limit · resets 9pm (Asia/Singapore)")
    world.tick({"builder": agent("builder", pane), "adversary": agent("adversary", PANE_ACTIVE)})
    window = world.status.agents["builder"].limit
    assert window is not None and window.parsed
    assert window.until == datetime(2026, 11, 22, 13, 0, 45, tzinfo=UTC)  # 21:00 SGT + slack
    assert (window.limit_class, window.decided_by) == ("weekly", "window.stated-reset")
    assert "unparsable" not in _armed(world) and "window.stated-reset" in _armed(world)
    assert "banner says reset 2026-11-22 13:00:00Z" in _armed(world)
    for _ in range(119):  # ten hours of ticks, every five minutes
        acts = world.tick({"builder": agent("builder", pane), "adversary": agent("adversary", PANE_ACTIVE)},
                          advance=300)
        assert not of_type(acts, "SendText", "builder"), acts
        assert not [a for a in acts if type(a).__name__ in HEAL and a.role == "builder"], acts
    assert not [h for h in world.status.history if h.rule == "limit.probe-warn"]
    assert world.now == datetime(2026, 11, 22, 12, 55, tzinfo=UTC)
    acts = world.tick({"builder": agent("builder", pane), "adversary": agent("adversary", PANE_ACTIVE)},
                      advance=346)  # 13:00:46, just past 21:00 Singapore + slack
    assert [a.purpose for a in of_type(acts, "SendText", "builder")] == ["probe"]


@pytest.mark.parametrize(
    ("line", "limit_class"),
    [
        ("You've hit your weekly limit · resets 9pm (Asia/Singapore)", "weekly"),
        ("You've hit your org's monthly usage limit · resets 9pm (Asia/Singapore)", "monthly"),
        ("Sonnet limit reached · resets 9pm (Asia/Singapore)", "model"),
        ("You're out of extra usage · resets 9pm (Asia/Singapore)", "spend"),
    ],
)
def test_long_classes_may_state_a_time_up_to_a_day_ahead(line: str, limit_class: str):
    reading = classify(_screen(line), SINGAPORE_11, UTC)
    decision = decide(reading, SINGAPORE_11, TimingSpec())
    assert reading.limit_class == limit_class
    assert (decision.rule, decision.parsed) == ("window.stated-reset", True)
    assert decision.until == datetime(2026, 11, 22, 13, 0, 45, tzinfo=UTC)


@pytest.mark.parametrize(
    "line",
    ["5-hour limit reached ∙ resets 9pm (Asia/Singapore)", "You've hit your session limit · resets 9pm (Asia/Singapore)",
     "You've hit your limit · resets 9pm (Asia/Singapore)"],
)
def test_session_and_unknown_limits_keep_the_stale_banner_horizon(line: str):
    reading = classify(_screen(line), SINGAPORE_11, UTC)
    decision = decide(reading, SINGAPORE_11, TimingSpec())
    assert (decision.rule, decision.parsed) == ("window.stale-banner-horizon", False)
    assert decision.until == SINGAPORE_11 + timedelta(seconds=45)
    assert "stale banner" in decision.reason and "unparsable" not in decision.reason


def test_every_decision_names_a_known_rule_and_never_claims_unparsable_when_parsed():
    timing = TimingSpec()
    for line in ("You've hit your weekly limit · resets 9pm", "Weekly limit reached · resets Jan 2, 2026, 9pm",
                 "You've hit your monthly spend limit.", "You've hit your limit",
                 "Claude AI usage limit reached|1760004000"):
        reading = classify(_screen(line), SINGAPORE_11, UTC)
        decision = decide(reading, SINGAPORE_11, timing)
        assert decision.rule in WINDOW_RULES, line
        if reading.reset is not None:
            assert "no reset" not in decision.reason, line
    passed = decide(classify(_screen("Claude AI usage limit reached|1760004000"), SINGAPORE_11, UTC),
                    SINGAPORE_11, timing)
    assert passed.rule == "window.reset-passed" and "already passed" in passed.reason
    epoch = int((SINGAPORE_11 + timedelta(hours=2)).timestamp())
    header = decide(classify(_screen(f"Claude AI usage limit reached|{epoch}"), SINGAPORE_11, UTC),
                    SINGAPORE_11, timing)
    assert (header.rule, header.until) == ("window.epoch-reset", SINGAPORE_11 + timedelta(hours=2, seconds=45))
    left = decide(classify(_screen("Usage limit reached. It will reset in 3 hours 20 minutes."), SINGAPORE_11, UTC),
                  SINGAPORE_11, timing)
    assert (left.rule, left.until) == ("window.stated-duration", SINGAPORE_11 + timedelta(hours=3, minutes=20, seconds=45))


# ── fault 7: no reset to wait for: probe slowly, never restart ──────────────────────────────


@pytest.mark.parametrize(
    "line",
    ["You've hit your monthly spend limit.", "Credit balance too low · Add funds: https://platform.claude.com/settings/billing",
     "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade."],
)
def test_spend_limits_probe_hourly_and_never_restart(line: str):
    world = World()
    world.started()
    pane = _screen(line)
    world.tick({"builder": agent("builder", pane), "adversary": agent("adversary", PANE_ACTIVE)}, advance=1)
    window = world.status.agents["builder"].limit
    assert (window.limit_class, window.decided_by) == ("spend", "window.spend-probe")
    assert window.until == world.now + timedelta(hours=1)
    assert "timing.spendProbeInterval" in _armed(world)
    probes = 0
    for _ in range(12 * 10):  # ten hours
        acts = world.tick({"builder": agent("builder", pane), "adversary": agent("adversary", PANE_ACTIVE)},
                          advance=300)
        probes += len(of_type(acts, "SendText", "builder"))
        assert not [a for a in acts if type(a).__name__ in HEAL and a.role == "builder"], acts
        assert world.status.agents["builder"].state in {"Limited", "NeedsAttention"}  # SpendLimit
    assert probes == 10  # hourly, not every 300 s (that was 120)
    assert world.status.agents["builder"].limit.decided_by == "window.spend-probe"
    warn = [h.reason for h in world.status.history if h.rule == "limit.probe-warn"]
    assert warn and "3600s (spec.timing.spendProbeInterval)" in warn[0]


def test_spend_probe_interval_is_a_spec_knob():
    world = World(spec=__import__("tests.core.reconcile_helpers", fromlist=["make_spec"]).make_spec(
        timing={"spendProbeInterval": "2h"}))
    world.started()
    world.tick({"builder": agent("builder", _screen("You've hit your monthly spend limit.")),
                "adversary": agent("adversary", PANE_ACTIVE)}, advance=1)
    assert world.status.agents["builder"].limit.until == world.now + timedelta(hours=2)


def test_a_probe_re_arms_with_the_rule_that_decided():
    timing = TimingSpec()
    now = SINGAPORE_11
    reading = classify(_screen("You've hit your limit"), now, UTC)
    step = step_limit(None, reading, now, timing, probe_already_typed=False)
    assert step.window is not None and step.window.decided_by == "window.fallback-cadence"
    later = now + timedelta(seconds=301)
    probed = step_limit(step.window, reading, later, timing, probe_already_typed=False)
    assert probed.probe and probed.window is not None
    assert probed.window.decided_by == "window.probe-cadence"


# ── fault 9: the StopFailure payload's banner text is parsed ────────────────────────────────


def _hook(world: World, message: str | None, error_type: str | None = "rate_limit"):
    from dataclasses import replace
    event = HookEvent("StopFailure", time=world.now + timedelta(seconds=2), error_type=error_type, message=message)
    return {"builder": replace(agent("builder", PANE_IDLE), hook_events=(event,)),
            "adversary": agent("adversary", PANE_ACTIVE)}


def test_stop_failure_message_gives_the_window_its_reset_and_class():
    world = World(now=SINGAPORE_11 - timedelta(seconds=1))
    world.started()
    world.tick(_hook(world, "You've hit your weekly limit · resets 9pm (Asia/Singapore)"), advance=5)
    window = world.status.agents["builder"].limit
    assert window.rule == "hook.stop-failure" and window.parsed
    assert window.until == datetime(2026, 11, 22, 13, 0, 45, tzinfo=UTC)
    assert (window.limit_class, window.decided_by) == ("weekly", "window.stated-reset")
    assert "You've hit your weekly limit" in window.excerpt


def test_stop_failure_billing_error_is_a_slow_spend_window():
    world = World()
    world.started()
    world.tick(_hook(world, "Credit balance is too low", "billing_error"), advance=5)
    window = world.status.agents["builder"].limit
    assert (window.limit_class, window.decided_by) == ("spend", "window.spend-probe")


def test_stop_failure_without_a_message_keeps_the_flat_window():
    world = World()
    world.started()
    world.tick(_hook(world, None), advance=5)
    window = world.status.agents["builder"].limit
    assert window.decided_by == "window.fallback-cadence" and not window.parsed


def test_stop_failure_authentication_failed_is_a_login_finding_not_a_window():
    from loopphase.core.hooks import hook_reading
    world = World()
    world.started()
    obs = _hook(world, "Invalid API key · Please run /login", "authentication_failed")["builder"]
    reading = hook_reading(classify(PANE_IDLE, world.now, UTC), obs, None, world.now, UTC)
    assert reading.limit is None and reading.login is not None
    assert reading.login.rule == "hook.authentication-failed" and "Invalid API key" in reading.login.excerpt


# ── fault 10: transient throttling is never a usage window ──────────────────────────────────


@pytest.mark.parametrize(
    "line",
    ["API Error: Server is temporarily limiting requests (not your usage limit) · Rate limited",
     "API Error: Repeated 529 Overloaded errors. The API is at capacity — this is usually temporary.",
     'API Error (529 {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}) · Retrying in 5 seconds… (attempt 3/10)',
     "API Error: Request rejected (429) · this may be a temporary capacity issue.",
     "Provider is overloaded"],
)
def test_transient_throttling_is_never_a_window_on_screen_or_from_the_hook(line: str):
    reading = classify(_screen(line), SINGAPORE_11, UTC)
    assert reading.limit is None and reading.limit_class is None and reading.transient is not None
    world = World()
    world.started()
    world.tick({"builder": agent("builder", _screen(line)), "adversary": agent("adversary", PANE_ACTIVE)}, advance=5)
    assert world.status.agents["builder"].limit is None
    world.tick(_hook(world, line, "rate_limit"), advance=5)
    assert world.status.agents["builder"].limit is None

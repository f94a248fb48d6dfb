"""Real Claude Code screens for usage limits and API errors, classified by the core.

Each screen is drawn by the real CLI (through the real shim, in tmux) from a scripted answer:
429 with the subscription's unified rate-limit headers (OAuth login) or the same 429 with an
API key, 529 overloaded, 401 expired login, prompt too long, credit balance too low. The
screens are recorded as fixtures (``--record-screens``) for tests/core/test_real_screens.py.

Asserted here is what the core must find; where it does not yet, the fixture's
``knownIssue`` says so and the check is an expected failure naming it.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from loopphase.core.screen import classify
from loopphase.modelserver.server import ModelServer
from loopphase.shim.client import to_observation

from tests.core.reconcile_helpers import PANE_IDLE, World, agent, git
from tests.realcli.conftest import RealShim
from tests.realcli.screens import observed

pytestmark = [pytest.mark.realcli, pytest.mark.timeout(240)]

BERLIN = "Europe/Berlin"
KILLS = {"RestartAgent", "RecreateHost", "StopAgent"}


def stated(epoch: float) -> datetime:
    """The reset as the CLI states it: to the minute."""
    return datetime.fromtimestamp(epoch, UTC).replace(second=0, microsecond=0)


async def test_usage_limit_screens(claude_shim, model_server: ModelServer, claude_cli, screens) -> None:
    reset_at = (datetime.now(UTC) + timedelta(minutes=3)).timestamp()
    model_server.load(f"""
agents:
  five:  {{turns: [{{limit: {{claim: five_hour, reset_at: {reset_at}}}}}]}}
  week:  {{turns: [{{limit: {{claim: seven_day, reset_at: {reset_at}}}}}]}}
  opus:  {{turns: [{{limit: {{claim: seven_day_opus, reset_at: {reset_at}}}}}]}}
  key:   {{turns: [{{limit: {{claim: five_hour, reset_at: {reset_at}}}}}]}}
""")
    tz = {"TZ": BERLIN}
    five, week, opus, key = await asyncio.gather(
        claude_shim("five", "Start the gate.", env=tz),
        claude_shim("week", "Start the gate.", env=tz),
        claude_shim("opus", "Start the gate.", env=tz),
        claude_shim("key", "Start the gate.", login="key", env={**tz, "CLAUDE_CODE_MAX_RETRIES": "0"}),
    )
    waits = {five: "Continuing automatically at", week: "limit resets", opus: "What do you want to do?",
             key: "Request rejected (429)"}
    states = dict(zip(waits, await asyncio.gather(*(s.wait_pane(t, 60) for s, t in waits.items())), strict=True))
    now = datetime.now(UTC)
    version = claude_cli[1]
    readings = {}
    for shim, state in states.items():
        reading = classify(state.pane, now, ZoneInfo("UTC"))
        readings[shim.agent] = reading
        screens.save("claude", version, f"limit-{shim.agent}", state.pane, captured_at=now, tz="UTC",
                     scenario=f"429 rate_limit_error, unified claim of agent {shim.agent!r}, reset {stated(reset_at).isoformat()}",
                     expected=observed(reading))

    # The weekly and Opus screens are limits; the Opus one is a menu (class model).
    assert readings["week"].limit is not None
    assert readings["opus"].limit is not None and readings["opus"].limit.rule == "limit.menu"
    assert getattr(readings["opus"], "limit_class", "model") == "model"
    assert f"({BERLIN})" in states[five].pane  # the zone the CLI states the reset in

    # The core arms a window on the 5-hour screen and kills nothing; the agent lives on.
    r = readings["five"]
    assert r.limit is not None and r.reset is not None, r
    world = World(now=now)
    world.started()
    world.now = now + timedelta(seconds=2)
    obs = to_observation("builder", await five.state(), None)
    actions = world.tick({"builder": obs, "adversary": agent("adversary", PANE_IDLE)}, git("base0"))
    window = world.status.agents["builder"].limit
    assert window is not None and window.parsed, window
    assert not [a for a in actions if type(a).__name__ in KILLS and a.role == "builder"], actions
    after = await five.state()
    assert after.alive and after.restarts == 0 and after.pid == states[five].pid

    # ...at the stated reset, in the zone the screen names (Berlin; the default zone is UTC).
    slack = timedelta(seconds=world.spec.timing.limit_reset_slack)
    if r.reset.at != stated(reset_at) and r.reset.at - stated(reset_at) == timedelta(hours=1):
        pytest.xfail("known (tests/fixtures/screens/claude-2.1.328/limit-five.yaml): the zoneless "
                     "'limit resets <time>' line is read in the default zone, an hour late")
    assert r.reset.at == stated(reset_at), (r.reset, stated(reset_at))
    assert window.until == stated(reset_at) + slack, (window.until, stated(reset_at), slack)


ERRORS = {
    # agent: (preset, what the real CLI draws)
    "overloaded": ("overloaded", "529 Overloaded"),
    "expired": ("expired_login", "Please run /login"),
    "context": ("prompt_too_long", "Prompt is too long"),
    "credit": ("credit_balance", "Credit balance too low"),
}


async def test_api_error_screens(claude_shim, model_server: ModelServer, claude_cli, screens) -> None:
    model_server.load("agents:\n" + "".join(
        f"  {name}: {{turns: [{{error: {{preset: {preset}, times: 20}}}}]}}\n"
        for name, (preset, _) in ERRORS.items()))
    shims: list[RealShim] = await asyncio.gather(*(
        claude_shim(name, "Start the gate.", env={"CLAUDE_CODE_MAX_RETRIES": "0"}) for name in ERRORS))
    states = await asyncio.gather(*(s.wait_pane(ERRORS[s.agent][1], 60) for s in shims))
    now = datetime.now(UTC)
    found = {}
    for shim, state in zip(shims, states, strict=True):
        reading = classify(state.pane, now, ZoneInfo("UTC"))
        screens.save("claude", claude_cli[1], f"error-{shim.agent}", state.pane, captured_at=now, tz="UTC",
                     scenario=f"scripted API error {ERRORS[shim.agent][0]!r}, CLAUDE_CODE_MAX_RETRIES=0",
                     expected=observed(reading))
        # The CLI waits at its prompt ("resend your message"); it did not exit.
        assert state.alive, state.pane
        found[shim.agent] = reading
    # Each has its own finding (issue 11): none is a usage window except the spend refusal.
    assert getattr(found["overloaded"], "transient", None) is not None and found["overloaded"].limit is None
    assert getattr(found["expired"], "login", None) is not None and found["expired"].limit is None
    assert getattr(found["context"], "context_full", None) is not None and found["context"].limit is None
    assert found["credit"].limit is not None and getattr(found["credit"], "limit_class", "spend") == "spend"

"""Real Claude Code in the real shim: kickoff, hooks, the role's own home, warm resume."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from loopphase.modelserver.server import ModelServer

from tests.realcli.conftest import RealShim, snapshot, until

pytestmark = [pytest.mark.realcli, pytest.mark.timeout(240)]

KICKOFF = "You are the Builder. Read PLAN.md and start on gate p1."
CONTINUATION = "Continue with gate p1 where you left off."


async def test_kickoff_hooks_own_home_and_warm_resume(
    claude_shim, model_server: ModelServer, user_home, claude_cli, screens
) -> None:
    model_server.load(f"""
agents:
  kick:
    turns:
      - text: "Kickoff received: starting on gate p1."
      - when: "{CONTINUATION}"
        text: "Resumed the same session."
""")
    before = snapshot(user_home)
    shim: RealShim = await claude_shim("kick", KICKOFF, continuation=CONTINUATION)

    # the kickoff arrives at the model, the answer on the screen, the hooks at the shim
    state = await shim.wait_pane("Kickoff received: starting on gate p1.", timeout=60)
    first = [r for r in model_server.requests("kick") if r.main][0]
    assert first.human_text == KICKOFF
    state = await until(shim.state, lambda s: {"SessionStart", "Stop"} <= {e.name for e in s.hook_events},
                        30, "SessionStart and Stop hook events")
    session_id = state.session_id
    assert session_id and len(session_id) >= 32
    screens.save("claude", claude_cli[1], "idle-after-answer", state.pane, scenario="kickoff answered",
                 captured_at=datetime.now(UTC), tz="UTC", expected={})

    # the role's own home: hooks there, nothing of the user's written or created
    assert snapshot(user_home) == before, "the user's home changed"
    role_home = shim.state_dir / "agent-home" / "claude"
    assert (role_home / "settings.json").is_file() and (role_home / ".claude.json").is_file()
    assert any((role_home / "projects").rglob(f"{session_id}.jsonl")), "the session lives in the role home"

    # warm resume: --resume <the SessionStart id> with a non-empty continuation
    result = await shim.client.restart("warm")
    assert result["mode"] == "warm"
    await shim.wait_pane("Resumed the same session.", timeout=60)
    resumed = [r for r in model_server.requests("kick") if r.main][-1]
    assert resumed.human_text == CONTINUATION
    assert "Kickoff received: starting on gate p1." in resumed.history, "not the same conversation"
    argv = shim.agent_cmdline()
    assert argv[argv.index("--resume") + 1] == session_id, argv
    state = await until(shim.state, lambda s: sum(e.name == "SessionStart" for e in s.hook_events) >= 2,
                        30, "the resumed session's SessionStart")
    assert state.session_id == session_id, "the warm start resumed the same conversation"
    assert snapshot(user_home) == before

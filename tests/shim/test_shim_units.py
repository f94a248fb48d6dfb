"""Pure parts of the shim: adapters' argv, the input-area check, hooks, seeding, transcript."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from loopphase.shim.adapters import AgentConfig, LaunchError, build_launch, claude_argv
from loopphase.shim.claude_setup import HOOK_EVENTS, seed_claude_home
from loopphase.shim.inputarea import text_pending
from loopphase.shim.transcript import TranscriptTail, clean_line


def cfg(tmp_path: Path, backend: str, **kw: object) -> AgentConfig:
    return AgentConfig(role="builder", backend=backend, workdir=str(tmp_path),
                       state_dir=tmp_path / "state", **kw)  # type: ignore[arg-type]


def test_claude_argv_cold_warm() -> None:
    session = "0f9c1c7e-1d2b-4c3a-9e8f-123456789abc"
    assert claude_argv("cold", "go; rm -rf /", "opus", None) == [
        "claude", "--model", "opus", "--dangerously-skip-permissions", "--", "go; rm -rf /"]
    assert claude_argv("warm", "carry on", None, None) == [
        "claude", "--continue", "--dangerously-skip-permissions", "--", "carry on"]
    assert claude_argv("warm", "carry on", None, session) == [
        "claude", "--resume", session, "--dangerously-skip-permissions", "--", "carry on"]


def test_claude_launch_configures_the_role_home_not_the_users(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 12 fault 1: the launch used to merge its hooks into $HOME/.claude*."""
    user_home = tmp_path / "user"
    (user_home / ".claude").mkdir(parents=True)
    (user_home / ".claude.json").write_text('{"mine": true}')
    (user_home / ".claude" / "settings.json").write_text('{"hooks": {"Stop": []}}')
    before = {p: p.read_bytes() for p in user_home.rglob("*") if p.is_file()}
    monkeypatch.setenv("HOME", str(user_home))
    monkeypatch.delenv("CLAUDE_CONFIG_DIR", raising=False)
    for name in ("ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_AUTH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    c = cfg(tmp_path, "claude")
    launch = build_launch(c, "cold", "start", 0, "p", None)
    assert launch.env["CLAUDE_CONFIG_DIR"] == str(c.agent_home / "claude")
    # git (run by claude's tools) keeps the user's config and credential cache
    assert "XDG_CONFIG_HOME" not in launch.env and "XDG_CACHE_HOME" not in launch.env
    settings = json.loads((c.agent_home / "claude" / "settings.json").read_text())
    assert str(c.hook_events_file) in settings["hooks"]["Stop"][0]["hooks"][0]["command"]
    assert {p: p.read_bytes() for p in user_home.rglob("*") if p.is_file()} == before
    assert not (c.agent_home / "claude" / ".credentials.json").exists()
    # a user login file is linked (read by reference), never copied or written
    (user_home / ".claude" / ".credentials.json").write_text('{"claudeAiOauth": {}}')
    build_launch(c, "warm", "go on", 0, "p", "sid")
    link = c.agent_home / "claude" / ".credentials.json"
    assert link.is_symlink() and link.resolve() == (user_home / ".claude" / ".credentials.json").resolve()


def test_warm_start_needs_a_continuation(tmp_path: Path) -> None:
    with pytest.raises(LaunchError, match="continuation"):
        build_launch(cfg(tmp_path, "sim", scenario="s.yaml"), "warm", " ", 0, "p", None)


def test_sim_and_opencode_launch(tmp_path: Path) -> None:
    launch = build_launch(cfg(tmp_path, "sim", scenario="s.yaml", env={"A": "1"}),
                          "warm", "go on", 2, "gate-1", None)
    assert launch.argv[:3] == [sys.executable, "-m", "loopphase.sim.agent"]
    assert launch.argv[-3:] == ["--continue", "--", "go on"] and "gate-1" in launch.argv
    assert launch.env == {"A": "1", "LOOPPHASE_ROLE": "builder", "LOOPPHASE_PHASE": "gate-1",
                          "LOOPPHASE_PHASE_INDEX": "2"}
    oc = build_launch(cfg(tmp_path, "opencode", opencode_server="http://o:4096",
                          bootstrap_text="read KICKOFF.md and start", model="x/y"),
                      "cold", "long\nkickoff", 0, "p", None)
    assert oc.argv == ["opencode", "attach", "http://o:4096", "--dir", str(tmp_path)]
    assert oc.after_start_line == "read KICKOFF.md and start" and oc.submit_key == "C-m"
    with pytest.raises(LaunchError, match="opencode-server"):
        build_launch(cfg(tmp_path, "opencode"), "cold", "x", 0, "p", None)


@pytest.mark.parametrize(
    ("pane", "pending"),
    [
        ("old > ping the adversary now\n⠋ Working…\n> ", False),
        ("> ping the adversary now\n\n> ping the adversary now", True),
        ("╭────╮\n│ > ping the adversary now   │\n╰────╯\n  ? for shortcuts", True),
        ("╭────╮\n│ >                          │\n╰────╯", False),
        ("ping the adversary now\n" + "x\n" * 10, False),  # scrollback does not count
        ("no prompt marker here\nping the adversary now", True),
    ],
)
def test_text_pending_looks_only_at_the_input_area(pane: str, pending: bool) -> None:
    assert text_pending(pane, "ping the adversary now") is pending


def test_hook_command_appends_one_line(tmp_path: Path) -> None:
    events = tmp_path / "hook-events.jsonl"
    for payload in ('{"hook_event_name": "SessionStart", "session_id": "s-1"}', "not json"):
        subprocess.run([sys.executable, "-m", "loopphase.shim.hook", str(events)],
                       input=payload, text=True, timeout=20, check=True)
    lines = [json.loads(x) for x in events.read_text().splitlines()]
    assert lines[0]["session_id"] == "s-1" and "receivedAt" in lines[0]
    assert lines[1]["hook_event_name"] == "Unparsable"


def test_seed_claude_home_merges(tmp_path: Path) -> None:
    (tmp_path / "claude").mkdir()
    (tmp_path / "claude" / ".claude.json").write_text('{"keep": 1}')
    env = seed_claude_home(tmp_path, str(tmp_path / "w"), tmp_path / "ev.jsonl",
                           {"ANTHROPIC_API_KEY": "sk-" + "x" * 30}, tmp_path / "nouser")
    assert env == {"CLAUDE_CONFIG_DIR": str(tmp_path / "claude")}
    config = json.loads((tmp_path / "claude" / ".claude.json").read_text())
    assert config["keep"] == 1 and config["hasCompletedOnboarding"]
    assert config["customApiKeyResponses"]["approved"] == ["x" * 20]
    assert config["projects"][str((tmp_path / "w").resolve())]["hasTrustDialogAccepted"]
    settings = json.loads((tmp_path / "claude" / "settings.json").read_text())
    assert settings["enableAllProjectMcpServers"] is True  # no MCP approval dialog
    for event in HOOK_EVENTS:
        command = settings["hooks"][event][0]["hooks"][0]["command"]
        assert "loopphase.shim.hook" in command and "ev.jsonl" in command


def test_transcript_cleaning(tmp_path: Path) -> None:
    assert clean_line("\x1b[2K\r⠋ Working…\r\x1b[1Adone\x1b[0m") == "done"
    raw = tmp_path / "t.log"
    raw.write_bytes("a\r\n⠋ Working\r\n⠙ Working\r\n> \r\nb\r\npart".encode())
    tail = TranscriptTail(raw)
    assert tail.read_new() == ["a", "⠋ Working", "b"]


def test_stop_failure_banner_text_reaches_the_core_and_sets_the_window(tmp_path: Path) -> None:
    """Issue 11 fault 9: Claude Code's StopFailure carries the banner in
    ``last_assistant_message``; through the real hook command and the host's reader it reaches
    HookEvent.message, and the core reads its reset and class from it."""
    from datetime import UTC, datetime, timedelta
    from types import SimpleNamespace

    from loopphase.core.hooks import hook_reading
    from loopphase.core.screen import classify
    from loopphase.shim.client import to_observation
    from loopphase.shim.host import AgentHost
    from loopphase.shim.protocol import ShimState

    events = tmp_path / "hook-events.jsonl"
    payload = {
        "hook_event_name": "StopFailure", "session_id": "s-1", "error": "rate_limit",
        "last_assistant_message": "You've hit your weekly limit · resets 9pm (Asia/Singapore)",
    }
    clean = {"hook_event_name": "Stop", "session_id": "s-1", "last_assistant_message": "A long answer."}
    for event in (clean, payload):
        subprocess.run([sys.executable, "-m", "loopphase.shim.hook", str(events)],
                       input=json.dumps(event), text=True, timeout=20, check=True)
    host = SimpleNamespace(cfg=SimpleNamespace(hook_events_file=events))
    infos = AgentHost.hook_events(host)  # type: ignore[arg-type]  # only cfg.hook_events_file is read
    assert [(e.name, e.error_type, e.message) for e in infos] == [
        ("Stop", None, None),  # a clean Stop's answer does not ride along every state answer
        ("StopFailure", "rate_limit", payload["last_assistant_message"])]
    state = ShimState.model_validate({"version": "t", "role": "builder", "backend": "claude", "alive": True,
                                      "pane": "> ", "hookEvents": [e.wire() for e in infos]})
    obs = to_observation("builder", state, None)
    now = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)  # 11:00 in Singapore
    reading = hook_reading(classify(obs.pane, now, UTC), obs, now - timedelta(hours=1), now, UTC)
    assert reading.limit is not None and reading.limit.rule == "hook.stop-failure"
    assert reading.limit_class == "weekly"
    assert reading.reset is not None and reading.reset.at == datetime(2026, 11, 22, 13, 0, tzinfo=UTC)


def test_opencode_multi_line_prompt_goes_to_a_file(tmp_path: Path) -> None:
    """opencode takes one typed line: a multi-line kickoff used to be refused (LaunchError)."""
    launch = build_launch(cfg(tmp_path, "opencode", opencode_server="http://o:4096"),
                          "cold", "*** PHASE p1 ***\nread the plan", 0, "p1", None)
    path = tmp_path / "state" / "LOOPPHASE-KICKOFF-p1.md"
    assert launch.after_start_line == f"Read {path} in full and follow it now."
    assert path.read_text() == "*** PHASE p1 ***\nread the plan"
    for name in ("XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME"):
        assert launch.env[name].startswith(str(tmp_path / "state" / "agent-home")), name


def test_dialog_title_agrees_with_the_screen_classifier() -> None:
    """The shim's light dialog check (no kubernetes/yaml imports) is the classifier's detector."""
    from datetime import UTC, datetime

    from loopphase.core.screen import classify
    from loopphase.shim.inputarea import dialog_title

    from tests.core.reconcile_helpers import DIALOG_TITLE, PANE_ACTIVE, PANE_DIALOG, PANE_IDLE

    now = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    with_prompt = PANE_DIALOG + "\n> "
    quoted = "The dialog said 'Enter to confirm · Esc to cancel' and I chose Yes.\n\n> "
    for pane in (PANE_DIALOG, with_prompt, PANE_IDLE, PANE_ACTIVE, quoted):
        found = classify(pane, now, UTC).dialog
        assert dialog_title(pane) == (found.excerpt if found else None), pane
    assert dialog_title(PANE_DIALOG) == DIALOG_TITLE
    assert dialog_title(quoted) is None

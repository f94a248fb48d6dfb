"""The simulated agent driven directly in a terminal (pexpect), with real git."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pexpect
import pytest
from loopphase.core.patterns import ACTIVE_RE, FATAL_RE, LIMIT_RE, SOFT_LIMIT_RE
from loopphase.sim.banners import BANNER_STYLES, clock, render_banner, reset_time
from loopphase.sim.scenario import ScenarioError, parse_scenario

pytestmark = pytest.mark.timeout(60)


def spawn(tmp_path: Path, scenario: str, *args: str, workdir: Path | None = None,
          log_name: str = "input.jsonl") -> tuple[pexpect.spawn, Path]:
    sc = tmp_path / "scenario.yaml"
    sc.write_text(scenario)
    log = tmp_path / log_name
    argv = ["-m", "loopphase.sim.agent", "--scenario", str(sc), "--role", "builder",
            "--workdir", str(workdir or tmp_path), "--input-log", str(log), *args]
    child = pexpect.spawn(sys.executable, argv, encoding="utf-8", timeout=15,
                          dimensions=(50, 220), env={**os.environ, "LOOPPHASE_PHASE": "p1"})
    return child, log


def records(log: Path, kind: str) -> list[dict]:
    if not log.exists():
        return []
    return [r for r in map(json.loads, log.read_text().splitlines()) if r["kind"] == kind]


def wait_for(check, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def test_spinner_prompt_and_input_logged_once(tmp_path: Path) -> None:
    child, log = spawn(tmp_path, """
phases:
  p1:
    - work: {seconds: 0.5}
    - wait_input: {match: "CLAIM"}
    - say: {text: "verifying the claim"}
""", "the kickoff prompt")
    try:
        child.expect("esc to interrupt")
        assert ACTIVE_RE.search(child.after)
        child.expect("> $")  # spinner gone, prompt at the bottom
        child.send("not yet\r")
        child.send("CLAIM pushed, please verify\r")
        child.expect("verifying the claim")
        inputs = wait_for(lambda: records(log, "input") if len(records(log, "input")) >= 2 else [])
        assert [r["text"] for r in inputs] == ["not yet", "CLAIM pushed, please verify"]
        assert records(log, "argv-prompt")[0]["mode"] == "cold"
        assert records(log, "argv-prompt")[0]["text"] == "the kickoff prompt"
        assert all(r["phase"] == "p1" and r["role"] == "builder" for r in inputs)
    finally:
        child.terminate(force=True)


def test_warm_start_needs_a_prompt_and_logs_it(tmp_path: Path) -> None:
    child, log = spawn(tmp_path, "phases: {default: []}\n", "--continue")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1
    child, log = spawn(tmp_path, "phases: {default: []}\n", "--continue", "carry on",
                       log_name="warm.jsonl")
    try:
        wait_for(lambda: records(log, "argv-prompt"))
        assert records(log, "argv-prompt")[0] == {
            **records(log, "argv-prompt")[0], "mode": "warm", "text": "carry on"}
    finally:
        child.terminate(force=True)


def test_banner_stays_limited_until_input_after_lift(tmp_path: Path) -> None:
    child, log = spawn(tmp_path, """
phases:
  default:
    - banner: {style: hit_session, reset_in: 300, tz: America/Los_Angeles, menu: true,
               lift_after: 1}
    - fatal: {}
""")
    try:
        child.expect("session limit")
        child.send("too early\r")
        child.expect("session limit")  # re-printed: still limited
        assert not FATAL_RE.search(child.before)
        # keep probing, like the supervisor does, until the limit lifts
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            child.send("probe\r")
            if child.expect(["cannot be modified", pexpect.TIMEOUT], timeout=0.5) == 0:
                break
        else:
            pytest.fail("the limit never lifted")
    finally:
        child.terminate(force=True)


def test_every_banner_style_is_a_limit_and_soft_is_not() -> None:
    now = datetime(2026, 3, 1, 9, 59, 30, tzinfo=UTC)
    at = reset_time(now, 60)
    assert at == datetime(2026, 3, 1, 10, 1, tzinfo=UTC) and clock(at) == "10:01am"
    for style in BANNER_STYLES:
        text = "\n".join(render_banner(style, at, "Europe/Moscow"))
        assert LIMIT_RE.search(text), style
        assert not SOFT_LIMIT_RE.search(text), style
    from loopphase.sim.banners import render_soft_warning
    soft = render_soft_warning(at)
    assert SOFT_LIMIT_RE.search(soft) and "resets at 10:01am" in soft
    assert render_banner("five_hour", at) == ["5-hour limit reached ∙ resets 10:01am"]


def test_bad_scenarios_are_named() -> None:
    with pytest.raises(ScenarioError, match="phases"):
        parse_scenario({"steps": []})
    with pytest.raises(ScenarioError, match=r"phases.p\[0\].*unknown step kind"):
        parse_scenario({"phases": {"p": [{"dance": {}}]}})


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=30, check=True).stdout


def test_git_steps_push_and_progress_survives_restart(tmp_path: Path) -> None:
    bare, clone = tmp_path / "remote.git", tmp_path / "clone"
    git("init", "-q", "--bare", "-b", "main", str(bare), cwd=tmp_path)
    git("clone", "-q", str(bare), str(clone), cwd=tmp_path)
    git("checkout", "-q", "-b", "main", cwd=clone)
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty",
        "-m", "init", cwd=clone)
    git("push", "-q", "origin", "main", cwd=clone)
    scenario = """
phases:
  p1:
    - git: {commit: "claim(gate-1): widgets done", files: {"src/w.txt": "x"}, push: true}
    - write_file: {path: machine-docs/ADVERSARY-INBOX.md, content: "look", commit: "inbox", push: true}
    - append_done: {commit: "done(p1): DONE", push: true}
    - fatal: {}
    - delete_file: {path: machine-docs/ADVERSARY-INBOX.md, commit: "ack inbox", push: true}
"""
    child, log = spawn(tmp_path, scenario, "kick", workdir=clone)
    try:
        child.expect("cannot be modified")
    finally:
        child.terminate(force=True)
    subjects = git("log", "--format=%s", "main", cwd=bare).splitlines()
    assert subjects == ["done(p1): DONE", "inbox", "claim(gate-1): widgets done", "init"]
    status = git("show", "main:machine-docs/STATUS-p1.md", cwd=bare)
    assert status == "## DONE\n"
    # Restarted (warm): continues after the fatal step, does not redo commits or re-wedge.
    child, log = spawn(tmp_path, scenario, "--continue", "go on", workdir=clone)
    try:
        child.expect("Pushed")
        assert "cannot be modified" not in child.before
    finally:
        child.terminate(force=True)
    subjects = git("log", "--format=%s", "main", cwd=bare).splitlines()
    assert subjects[:2] == ["ack inbox", "done(p1): DONE"] and len(subjects) == 5


def test_every_banner_style_classifies_as_its_family_with_class_and_reset() -> None:
    """The sim draws each family (issue 11); the core reads each as a hard limit of the style's
    class, with the stated reset (the relative one to the minute)."""
    from zoneinfo import ZoneInfo

    from loopphase.core.screen import classify
    from loopphase.sim.banners import BANNER_CLASSES, NO_RESET_STYLES

    now = datetime(2026, 3, 1, 9, 59, 30, tzinfo=UTC)
    assert set(BANNER_CLASSES) == set(BANNER_STYLES)
    for style in BANNER_STYLES:
        at = reset_time(now, 3 * 3600, style)
        pane = "● Working.\n  ⎿  " + "\n".join(render_banner(style, at, "Asia/Singapore", now=now)) + "\n> "
        reading = classify(pane, now, ZoneInfo("Asia/Singapore"))  # zone-less banners: that zone
        assert reading.limit is not None, style
        assert reading.limit_class == BANNER_CLASSES[style], (style, reading.limit_class)
        if style in NO_RESET_STYLES:
            assert reading.reset is None, style
        elif style == "auto_resume":  # the CLI's own resume, a minute after the stated reset
            assert reading.reset is not None and reading.reset.at == at + timedelta(minutes=1)
            assert reading.auto_resume is not None
        else:
            assert reading.reset is not None, style
            assert abs(reading.reset.at - at) < timedelta(minutes=1), (style, reading.reset.at, at)


def test_the_sim_screens_that_are_no_limit_classify_as_their_finding() -> None:
    from zoneinfo import ZoneInfo

    from loopphase.core.screen import classify
    from loopphase.sim import banners

    now = datetime(2026, 3, 1, 9, 59, 30, tzinfo=UTC)
    utc = ZoneInfo("UTC")

    def read(*lines: str):
        return classify("● Working.\n" + "\n".join(lines) + "\n", now, utc)

    assert read("  ⎿  " + banners.LOGIN_TEXT).login is not None
    assert read("  ⎿  " + banners.OAUTH_EXPIRED_TEXT).login is not None
    dialog = read(*banners.BYPASS_DIALOG).dialog
    assert dialog is not None and dialog.excerpt == "WARNING: Claude Code running in Bypass Permissions mode"
    assert read("  ⎿  " + banners.CONTEXT_FULL_TEXT).context_full is not None
    for text in (banners.OVERLOADED_TEXT, banners.NOT_USAGE_LIMIT_TEXT):
        reading = read("  ⎿  " + text)
        assert reading.transient is not None and reading.limit is None, text

"""Local end-to-end: `loopphase run` machinery with real shims, sim agents and a bare repo."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml
from loopphase.demo.main import build_repo, demo_manifest, run_demo
from loopphase.demo.summary import kills_inside_windows
from loopphase.runner.loop import Runner, TickReport
from loopphase.runner.specfile import load_spec

pytestmark = pytest.mark.slow


def inputs(state: Path, role: str) -> list[dict[str, Any]]:
    path = state / "logs" / f"{role}.inputs.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def processes_under(root: Path) -> list[str]:
    """Every live process whose command line or working directory is inside ``root``."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "cwd"]):
        try:
            cmd = " ".join(proc.info["cmdline"] or [])
            cwd = proc.info["cwd"] or ""
        except psutil.Error:
            continue
        if str(root) in cmd or cwd.startswith(str(root)):
            found.append(f"{proc.info['pid']}: {cmd[:120]}")
    return found


def test_demo_runs_every_mechanism_through_three_phases(tmp_path: Path, capsys) -> None:
    summary, runner = asyncio.run(run_demo(tmp_path, timeout=280))
    assert summary.ok, summary.render(0)
    printed = capsys.readouterr().out.splitlines()
    gate = next(i for i, line in enumerate(printed) if "awaiting-approval" in line)
    human = next(i for i, line in enumerate(printed) if "(a human runs: loopphase approve" in line)
    assert gate < human, printed  # the gate is reached, then the human approves
    state = runner.state_dir

    # Each ping arrived exactly once, at the right role.
    adversary_typed = [r["text"] for r in inputs(state, "adversary") if r["kind"] == "input"]
    builder_typed = [r["text"] for r in inputs(state, "builder") if r["kind"] == "input"]
    assert sum("gate CLAIM" in t for t in adversary_typed) == 3
    assert sum("ADVERSARY-INBOX" in t for t in adversary_typed) == 1
    assert sum("verdict or finding" in t for t in builder_typed) == 3
    assert not any("gate CLAIM" in t for t in builder_typed)

    actions = runner.store.read_actions()
    assert kills_inside_windows(actions) == 0
    heals = [(a["role"], a["action"], a.get("mode")) for a in actions if a["rule"].startswith("heal.")]
    assert ("adversary", "RestartAgent", "cold") in heals  # the fatal wedge
    assert ("builder", "SendText", None) in heals  # the stall, gently first
    advances = [a for a in actions if a.get("kind") in {"advance", "complete"}]
    assert [a["kind"] for a in advances] == ["advance", "advance", "complete"]
    assert processes_under(tmp_path) == []


def _write_spec(root: Path, builder: str, adversary: str, phases: int = 2) -> Path:
    bare = build_repo(root)
    manifest = demo_manifest(bare)
    spec = manifest["spec"]
    spec["phases"] = spec["phases"][:phases]
    spec["agents"]["builder"]["simScenario"] = builder
    spec["agents"]["adversary"]["simScenario"] = adversary
    path = root / "lp.yaml"
    path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    return path


async def _run_until(runner: Runner, predicate, timeout: float) -> None:
    def check(report: TickReport) -> None:
        if predicate(report):
            runner.request_stop()

    runner.on_tick = check
    await asyncio.wait_for(runner.run(exit_on_complete=True), timeout=timeout)


UNPUSHED_DONE_BUILDER = """
phases:
  p1-handoff:
    - work: {seconds: 1}
    - append_done: {}
    - git: {commit: "claim(p1): real work", files: {"src/a.txt": "a\\n"}, push: true}
    - idle: {seconds: 600}
"""
QUIET_ADVERSARY = """
phases:
  default:
    - wait_until: {seconds: 600}
"""


def test_an_unpushed_done_does_not_advance(tmp_path: Path) -> None:
    spec_path = _write_spec(tmp_path, UNPUSHED_DONE_BUILDER, QUIET_ADVERSARY)
    runner = Runner(load_spec(spec_path), tmp_path / "state")

    def claim_relayed(report: TickReport) -> bool:
        return any(a.rule == "handoff.claim" for a in report.result.actions)

    try:
        asyncio.run(_run_until(runner, claim_relayed, timeout=90))
        status = runner.store.load()
        # The head moved (the claim was relayed) yet the local-only DONE changed nothing.
        assert status.current is not None and status.current.index == 0
        workdir = runner.runtime.workdir("builder")
        assert "## DONE" in (workdir / "machine-docs" / "STATUS-p1-handoff.md").read_text()
    finally:
        asyncio.run(runner.stop_everything())
    assert processes_under(tmp_path) == []


LIMITED_BUILDER = """
phases:
  p1-handoff:
    - work: {seconds: 1}
    - banner: {style: epoch, reset_in: 25}
    - work: {seconds: 1}
    - append_done: {commit: "done(p1)", push: true}
  p2-limits:
    - work: {seconds: 1}
    - append_done: {commit: "done(p2)", push: true}
"""


def test_runner_restart_mid_limit_window_adopts_and_keeps_state(tmp_path: Path) -> None:
    spec_path = _write_spec(tmp_path, LIMITED_BUILDER, QUIET_ADVERSARY)
    state = tmp_path / "state"
    first = Runner(load_spec(spec_path), state)

    def limited(report: TickReport) -> bool:
        agent = report.result.status.agents.get("builder")
        return agent is not None and agent.limit is not None

    try:
        asyncio.run(_run_until(first, limited, timeout=60))
        before = first.store.load()
        window = before.agents["builder"].limit
        assert window is not None
        shims_before = {r: first.runtime.record(r) for r in ("builder", "adversary")}
        assert all(shims_before.values()), "stopping the runner must leave the shims running"

        second = Runner(load_spec(spec_path), state)
        first_tick: list[list[str]] = []
        windows_seen = []

        def watch(report: TickReport) -> None:
            if not first_tick:
                first_tick.append([type(a).__name__ for a in report.result.actions])
            agent = report.result.status.agents.get("builder")
            if agent is not None and agent.limit is not None:
                windows_seen.append(agent.limit.until)

        second.on_tick = watch
        final = asyncio.run(asyncio.wait_for(second.run(exit_on_complete=True), timeout=150))
        assert "StartAgent" not in first_tick[0], "live shims must be adopted, not restarted"
        assert windows_seen and windows_seen[0] == window.until, "the window survives the restart"
        assert final.completed_at is not None
        actions = second.store.read_actions()
        assert kills_inside_windows(actions) == 0
        assert any(a.get("kind") == "limit-lifted" for a in actions)
        assert [a["kind"] for a in actions if a.get("kind") in {"advance", "complete"}] == ["advance", "complete"]
        builder_restarts = [a for a in actions if a["role"] == "builder" and a["action"] in {"RestartAgent", "RecreateHost"}]
        assert builder_restarts == []
    finally:
        asyncio.run(first.stop_everything())
    assert processes_under(tmp_path) == []

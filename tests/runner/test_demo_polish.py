"""Faults (issue 12, second trial, demo polish): the claude demo's phase headers promised what
its script does not play (a warm restart, a probe, a declared wait); the claude demo overwrote
the sim demo's timeline picture; the demo printed "(a human runs: loopphase approve ...)"
before the line saying the phase awaits approval."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from loopphase.api.status import CurrentPhase, LoopPhaseStatus
from loopphase.controller.tick import TickResult
from loopphase.core.actions import EmitEvent
from loopphase.demo.agents import CLAUDE_UNSHOWN, OPENCODE_UNSHOWN
from loopphase.demo.main import default_timeline, demo_manifest, demo_tick
from loopphase.demo.progress import PHASE_PURPOSES, Printer
from loopphase.runner.loop import Runner, TickReport
from loopphase.runner.specfile import load_spec

# The words a phase header uses for a mechanism the demo summary counts.
WORDS = {
    "limit probe": ("probed", "probe"),
    "login needs attention": ("login",),
    "declared wait": ("declared wait",),
    "limit window armed": ("window",),
    "fatal restarted cold": ("fatal", "restarted cold"),
    "stall healed": ("nudged", "restarted warm"),
    "account hold armed": ("account hold",),
}


@pytest.mark.parametrize(("kind", "unshown"), [("sim", ()), ("claude", CLAUDE_UNSHOWN),
                                              ("opencode", OPENCODE_UNSHOWN)])
def test_phase_headers_promise_only_what_the_agents_play(kind: str, unshown: tuple[str, ...]) -> None:
    headers = " ".join(PHASE_PURPOSES[kind].values()).lower()
    for mechanism in unshown:
        for word in WORDS.get(mechanism, ()):
            assert word not in headers, (kind, mechanism, word, headers)
    assert "warm" not in PHASE_PURPOSES["claude"]["p3-healing"]  # its builder resumes on the nudge
    assert set(PHASE_PURPOSES[kind]) == {"p1-handoff", "p2-limits", "p3-healing"}


def test_each_agent_kind_draws_its_own_timeline() -> None:
    names = {default_timeline(kind) for kind in ("sim", "claude", "opencode")}
    assert len(names) == 3
    assert default_timeline("sim") == Path("loopphase-demo-timeline.png")  # what the README shows
    assert default_timeline("claude") == Path("loopphase-demo-claude-timeline.png")


def test_the_approval_line_comes_before_the_human_approves(tmp_path: Path, capsys) -> None:
    spec = tmp_path / "demo.yaml"
    spec.write_text(yaml.safe_dump(demo_manifest(tmp_path / "origin.git")))
    runner = Runner(load_spec(spec), tmp_path / "state")
    on_tick = demo_tick(runner, Printer(phases=3))
    now = datetime(2026, 11, 30, 12, tzinfo=UTC)
    status = LoopPhaseStatus(current=CurrentPhase(index=0, id="p1-handoff", started_at=now,
                                                  awaiting_approval_since=now))
    gate = EmitEvent(role=None, rule="approval.manual", reason="phase p1-handoff DONE; awaiting approval",
                     kind="awaiting-approval")
    on_tick(TickReport(1, TickResult(status=status, actions=[gate])))
    lines = capsys.readouterr().out.splitlines()
    gate_line = next(i for i, line in enumerate(lines) if "awaiting-approval" in line)
    human = next(i for i, line in enumerate(lines) if "(a human runs: loopphase approve" in line)
    assert gate_line < human, lines
    assert [r["verdict"] for r in runner.store.read_approvals()] == ["approve"]

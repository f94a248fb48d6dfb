"""A two-role, two-phase `loopphase run` loop with real Claude Code as builder and adversary.

Everything in the repository comes from the real CLIs' own Bash tool, run on the scripted
model's word: the builder's claim, the adversary's PASS review (after the supervisor pinged
it), the builder's `## DONE` (after it was pinged back), in both phases; the supervisor only
observes git and the screens, pings, and advances the phase.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from loopphase.demo.main import build_repo, demo_manifest
from loopphase.modelserver.server import ModelServer
from loopphase.runner.loop import Runner
from loopphase.runner.specfile import load_spec

from tests.realcli.conftest import CLAUDE_ENV, LOGIN_VARS, OAUTH_TOKEN, TOOLS_BIN, snapshot

pytestmark = [pytest.mark.realcli, pytest.mark.slow, pytest.mark.timeout(300)]

PUSH = "git push -q origin HEAD:main"


def step(phase: str, role: str, what: str) -> str:
    """One shell line the model asks the CLI to run (pull first: the other role pushes too)."""
    state = "machine-docs"
    if what == "claim":
        body = (f"mkdir -p src && echo '{phase} works' > src/{phase}.txt && git add -A && "
                f"git commit -qm 'claim({phase}-gate): {phase} implemented'")
    elif what == "review":
        body = (f"echo 'PASS: {phase} verified' > {state}/REVIEW-{phase}.md && git add -A && "
                f"git commit -qm 'review({phase}-gate): PASS'")
    else:
        body = (f"echo '## DONE' >> {state}/STATUS-{phase}.md && git add -A && "
                f"git commit -qm 'done({phase}): all DoD items verified'")
    return f"git pull -q --rebase origin main && {body} && {PUSH} && echo pushed-{what}-{phase}"


def script(phases: list[str], workdirs: dict[str, Path]) -> str:
    builder: list[dict] = []
    adversary: list[dict] = []
    for phase in phases:
        builder += [
            {"when": f"PHASE {phase} ", "bash": step(phase, "builder", "claim")},
            {"text": f"Claimed the {phase} gate; waiting for the review."},
            {"when": "verdict or finding", "bash": step(phase, "builder", "done")},
            {"text": f"{phase} is DONE."},
        ]
        adversary += [
            {"when": f"PHASE {phase} ", "text": f"Adversary ready for {phase}; waiting for a claim."},
            {"when": "gate CLAIM", "bash": step(phase, "adversary", "review")},
            {"text": f"Reviewed {phase}: PASS."},
        ]
    return yaml.safe_dump({"agents": {
        "loop-builder": {"system_match": f"{workdirs['builder']}\\b", "turns": builder},
        "loop-adversary": {"system_match": f"{workdirs['adversary']}\\b", "turns": adversary},
    }})


def git_log(bare: Path) -> list[str]:
    out = subprocess.run(["git", "--git-dir", str(bare), "log", "--format=%an|%s", "main"],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    return out.splitlines()[::-1]


async def test_two_role_two_phase_loop_completes(
    tmp_path: Path, model_server: ModelServer, claude_cli, user_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bare = build_repo(tmp_path)
    manifest = demo_manifest(bare)
    spec = manifest["spec"]
    spec["phases"] = spec["phases"][:2]
    phases = [p["id"] for p in spec["phases"]]
    for role in ("builder", "adversary"):
        spec["agents"][role] = {"backend": "claude",
                                "prompt": {"inline": f"You are the {role.title()}."}}
    spec["timing"].update({"stallIdle": "90s", "startGrace": "20s"})
    spec_path = tmp_path / "loop.yaml"
    spec_path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    state = tmp_path / "state"
    workdirs = {role: state / "work" / role for role in ("builder", "adversary")}
    model_server.load(script(phases, workdirs))

    for name in LOGIN_VARS:
        monkeypatch.delenv(name, raising=False)
    for key, value in CLAUDE_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("CLAUDE_CODE_OAUTH_TOKEN", OAUTH_TOKEN)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", model_server.url)
    monkeypatch.setenv("HOME", str(user_home))
    monkeypatch.setenv("PATH", os.pathsep.join([str(TOOLS_BIN), os.environ["PATH"]]))
    before = snapshot(user_home)

    runner = Runner(load_spec(spec_path), state)
    try:
        status = await asyncio.wait_for(runner.run(exit_on_complete=True), timeout=240)
    finally:
        await runner.stop_everything()

    log = git_log(bare)
    expected = []
    for phase in phases:
        expected += [f"loopphase-builder|claim({phase}-gate): {phase} implemented",
                     f"loopphase-adversary|review({phase}-gate): PASS",
                     f"loopphase-builder|done({phase}): all DoD items verified"]
    assert [line for line in log if not line.startswith("demo|")] == expected, log
    assert status.completed_at is not None, status.phase

    builder = model_server.requests("loop-builder")
    adversary = model_server.requests("loop-adversary")
    # the pings arrived as typed messages at the real CLIs, each once per phase
    assert sum("gate CLAIM" in (r.human_text or "") for r in adversary) == len(phases)
    assert sum("verdict or finding" in (r.human_text or "") for r in builder) == len(phases)
    # the tools really ran (their output went back to the model)
    assert any("pushed-review-p2" in t for r in adversary for t in r.tool_results)
    actions = runner.store.read_actions()
    kinds = [a.get("kind") for a in actions if a.get("kind") in {"advance", "complete"}]
    assert kinds == ["advance", "complete"], kinds
    assert not [a for a in actions if a["action"] in {"RecreateHost", "StopAgent"} and a["rule"].startswith("heal")]
    assert snapshot(user_home) == before, "the run changed the user's home"

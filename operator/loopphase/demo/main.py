"""`loopphase demo`: the whole loop on simulated agents, against a throwaway git repository.

Three phases show every mechanism: an expired login that needs a human (no heals; supervision
resumes by itself once it is fixed), handoff pings both ways, an inbox note, a usage-limit
window (armed, quiet, probed, lifted, zero kills) that holds the other agent of the same
account, a declared wait, a stall healed gently, a fatal wedge restarted cold, DONE -> phase
advance, and sequence complete. It ends with a
summary and exit code 0 when every mechanism was seen and nothing was killed in a window.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from loopphase.cli import LOG_LEVELS, log_level, plain
from loopphase.demo.agents import MissingCli, real_agents, require_cli
from loopphase.demo.progress import PHASE_PURPOSES, Printer
from loopphase.demo.scenarios import ADVERSARY, BUILDER
from loopphase.demo.summary import Summary, summarise
from loopphase.runner.loop import Runner, TickReport
from loopphase.runner.specfile import load_spec
from loopphase.timeline.cli import write_timeline

PHASES = ["p1-handoff", "p2-limits", "p3-healing"]
GIT_TIMEOUT = 60


def _git(*argv: str, cwd: Path | None = None) -> None:
    subprocess.run(["git", *argv], cwd=cwd, check=True, capture_output=True, timeout=GIT_TIMEOUT)


def build_repo(root: Path) -> Path:
    """A bare 'remote' with plan files, seeded from a scratch clone."""
    bare = root / "origin.git"
    _git("init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    seed = root / "seed"
    _git("clone", "--quiet", str(bare), str(seed))
    (seed / "plans").mkdir()
    (seed / "machine-docs").mkdir()
    for phase in PHASES:
        (seed / "plans" / f"{phase}.md").write_text(f"# Plan {phase}\n\n## Definition of Done\n- it works\n")
        (seed / "machine-docs" / f"STATUS-{phase}.md").write_text(f"# Status {phase}\n")
    (seed / "README.md").write_text("demo project supervised by LoopPhase\n")
    _git("-c", "user.name=demo", "-c", "user.email=demo@loopphase.local", "add", "-A", cwd=seed)
    _git("-c", "user.name=demo", "-c", "user.email=demo@loopphase.local", "commit", "--quiet",
         "-m", "plans", cwd=seed)
    _git("push", "--quiet", "origin", "HEAD:main", cwd=seed)
    return bare


def demo_manifest(bare: Path) -> dict[str, Any]:
    return {
        "apiVersion": "loopphase.dev/v1alpha1",
        "kind": "LoopPhase",
        "metadata": {"name": "demo"},
        "spec": {
            "repo": {"url": str(bare), "branch": "main"},
            "phases": [
                {"id": p, "plan": f"plans/{p}.md", "statusFile": f"STATUS-{p}.md"} for p in PHASES
            ],
            "agents": {
                "builder": {"backend": "sim", "simScenario": BUILDER,
                            "prompt": {"inline": "You are the Builder."}},
                "adversary": {"backend": "sim", "simScenario": ADVERSARY,
                              "prompt": {"inline": "You are the Adversary."}},
            },
            "timing": {
                "signalInterval": "1s", "heavyInterval": "10s", "stallIdle": "20s",
                "waitGrace": "5s", "limitResetSlack": "3s", "probeFallback": "15s",
                "startGrace": "8s",
            },
            "heal": {"tierCooldown": "3s", "postHealQuiet": "6s"},
            "timeZone": "UTC",
        },
    }


async def run_demo(workdir: Path, timeout: float, agents: str = "sim") -> tuple[Summary, Runner]:
    """Run the three phases; ``agents`` is ``sim`` or a real CLI (``claude``, ``opencode``)."""
    if agents == "sim":
        return await _run(workdir, timeout, demo_manifest(build_repo(workdir)), (), agents)
    state = workdir / "state"
    with real_agents(agents, workdir, state) as real:
        manifest = demo_manifest(build_repo(workdir))
        manifest["spec"]["agents"] = real.agents_spec
        # Real CLIs start in seconds, not instantly, and idle at their prompt between pings.
        manifest["spec"]["timing"].update({"startGrace": "30s", "stallIdle": "25s"})
        return await _run(workdir, timeout, manifest, real.unshown, agents)


def approve_when_waiting(runner: Runner, report: TickReport) -> None:
    """Play the human at the approval gate: what `loopphase approve` writes."""
    current = report.result.status.current
    if current is not None and current.awaiting_approval_since and not current.approvals_handled:
        print(f"  (a human runs: loopphase approve --phase {current.id})", flush=True)
        runner.store.append_approval({"id": f"demo-{current.id}", "verdict": "approve",
                                      "phase": current.id, "message": ""})


def demo_tick(runner: Runner, printer: Callable[[TickReport], None]) -> Callable[[TickReport], None]:
    """The demo's per-tick callback: print the tick (its "awaiting approval" line included),
    then play the human who approves (in that order: the gate is reached, then approved)."""
    def on_tick(report: TickReport) -> None:
        printer(report)
        approve_when_waiting(runner, report)
    return on_tick


async def _run(workdir: Path, timeout: float, manifest: dict[str, Any],
               unshown: tuple[str, ...], agents: str = "sim") -> tuple[Summary, Runner]:
    spec_path = workdir / "loopphase-demo.yaml"
    manifest["spec"]["phases"][0]["approval"] = "manual"  # the demo plays the approving human
    spec_path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    printer = Printer(phases=len(PHASES), purposes=PHASE_PURPOSES[agents])
    runner = Runner(load_spec(spec_path), workdir / "state")
    runner.on_tick = demo_tick(runner, printer)
    try:
        status = await asyncio.wait_for(runner.run(exit_on_complete=True), timeout=timeout)
    except TimeoutError:
        status = runner.store.load()
        print(f"demo: timed out after {timeout:.0f}s in phase {status.current.id if status.current else '?'}")
    finally:
        await runner.stop_everything()
    return summarise(status, runner.store.read_actions(), printer.states_seen, unshown), runner


def default_timeline(agents: str) -> Path:
    """The demo's picture, one file per agent kind (a claude demo keeps the sim demo's)."""
    return Path("loopphase-demo-timeline.png" if agents == "sim" else f"loopphase-demo-{agents}-timeline.png")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="loopphase demo", description=plain(__doc__))
    parser.add_argument("--dir", type=Path, help="work here (kept); default: a temp dir, removed")
    parser.add_argument("--timeout", type=float, default=300.0, help="give up after this many seconds (default 300)")
    parser.add_argument("--agents", choices=("sim", "claude", "opencode"), default="sim",
                        help="who plays builder and adversary: the simulated agent (default) or "
                             "a real CLI against a scripted local model endpoint")
    parser.add_argument("--log-level", type=log_level, default="WARNING", help=f"one of {', '.join(LOG_LEVELS)} (default WARNING)")
    parser.add_argument("--timeline", type=Path,
                        help="where the run's timeline picture goes (.png, .svg or .html; default "
                             "loopphase-demo-timeline.png, with --agents claude "
                             "loopphase-demo-claude-timeline.png, and so on)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for tool in ("tmux", "git"):
        if shutil.which(tool) is None:
            print(f"loopphase demo: {tool} is required (python3 dev.py demo installs it)", file=sys.stderr)
            return 2
    if args.agents != "sim":
        try:
            require_cli(args.agents)
        except MissingCli as err:
            print(f"loopphase demo: {err}", file=sys.stderr)
            return 2
    workdir = args.dir or Path(tempfile.mkdtemp(prefix="loopphase-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    who = "simulated builder + adversary" if args.agents == "sim" else \
        f"real {args.agents} as builder + adversary, scripted local model"
    print(f"LoopPhase demo: 3 phases, {who}, repo in {workdir}")
    started = time.monotonic()
    try:
        summary, runner = asyncio.run(run_demo(workdir, args.timeout, args.agents))
        write_timeline(runner.state_dir, args.timeline or default_timeline(args.agents))
    finally:
        if args.dir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print(summary.render(time.monotonic() - started))
    return 0 if summary.ok else 1

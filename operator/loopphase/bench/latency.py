"""Handoff and phase-advance latency with the local runner and simulated agents.

Workload: ``phases`` phases; in each, ``rounds`` ping-pong rounds (the builder works ~1.5 s,
pushes ``claim(...)``, waits for the review ping; the adversary waits for the claim ping, works
0.5 s, pushes ``review(...): PASS``), then the builder appends ``## DONE`` and pushes. The same
workload runs twice: with a fast signal interval (``fast``) and with the reference launcher's
cadence expressed as LoopPhase timing (``reference``: signalInterval 30 s, heavyInterval 300 s,
limitResetSlack 45 s at full size). Every other setting is the LoopPhase default.

Push time: a ``post-receive`` hook in the bare remote appends ``date +%s.%N`` and the new sha
for every ref update. post-receive runs right after the ref moved, so this is the instant the
push became observable to any fetch (the commit timestamps have 1 s resolution and record
commit time, not push time). Arrival time: the sim agent's input log (one JSON line per typed
line, wall-clock ms). Handoff latency = first matching ping arrival after the push - push time.
Ping-pong makes the pairing unambiguous: the next push only happens after the ping arrived.

Phase advance latency = ``## DONE`` push -> both roles of the next phase running with their
new kickoff (the later ``argv-prompt`` record of the two sim agents for that phase); also
reported: DONE push -> the runner's last ``StartAgent`` action for that phase (action log).
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from loopphase.bench.stats import ratio, summary
from loopphase.runner.loop import Runner
from loopphase.runner.specfile import load_spec

GIT_TIMEOUT = 60
HOOK = """#!/bin/sh
while read old new ref; do
  echo "$(date +%s.%N) $new $ref" >> "$(dirname "$0")/../push-times.log"
done
"""
CLAIM_RE = re.compile(r"claim", re.IGNORECASE)
REVIEW_RE = re.compile(r"verdict|review", re.IGNORECASE)


def _git(*argv: str, cwd: Path | None = None) -> str:
    env_args = ["-c", "user.name=bench", "-c", "user.email=bench@loopphase.invalid"]
    return subprocess.run(["git", *env_args, *argv], cwd=cwd, check=True, capture_output=True,
                          text=True, timeout=GIT_TIMEOUT).stdout


def phase_ids(phases: int) -> list[str]:
    return [f"b{i + 1}" for i in range(phases)]


def build_repo(root: Path, phases: int) -> Path:
    bare = root / "origin.git"
    _git("init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    hook = bare / "hooks" / "post-receive"
    hook.write_text(HOOK)
    hook.chmod(0o755)
    seed = root / "seed"
    _git("clone", "--quiet", str(bare), str(seed))
    (seed / "plans").mkdir()
    (seed / "machine-docs").mkdir()
    for pid in phase_ids(phases):
        (seed / "plans" / f"{pid}.md").write_text(f"# Plan {pid}\n")
        (seed / "machine-docs" / f"STATUS-{pid}.md").write_text(f"# Status {pid}\n")
    _git("add", "-A", cwd=seed)
    _git("commit", "--quiet", "-m", "plans", cwd=seed)
    _git("push", "--quiet", "origin", "HEAD:main", cwd=seed)
    shutil.rmtree(seed)
    (bare / "push-times.log").unlink(missing_ok=True)  # the seed push is not a handoff
    return bare


def scenarios(phases: int, rounds: int) -> tuple[str, str]:
    builder: dict[str, list[dict[str, Any]]] = {}
    adversary: dict[str, list[dict[str, Any]]] = {}
    for pid in phase_ids(phases):
        b: list[dict[str, Any]] = []
        # The adversary reads its kickoff first (works 1 s): an agent never seen working stays
        # "Starting" for timing.startGrace and gets no pings until then (see README).
        a: list[dict[str, Any]] = [{"work": {"seconds": 1.0}}]
        for i in range(rounds):
            b += [{"work": {"seconds": 1.5}},
                  {"git": {"commit": f"claim({pid}-g{i}): part {i}", "files": {f"src/{pid}-{i}.txt": f"{i}\n"},
                           "push": True}},
                  {"wait_input": {"match": "verdict|review", "timeout": 600}}]
            a += [{"wait_input": {"match": "CLAIM", "timeout": 600}},
                  {"work": {"seconds": 0.5}},
                  {"git": {"commit": f"review({pid}-g{i}): PASS",
                           "files": {f"machine-docs/REVIEW-{pid}-{i}.md": "PASS\n"}, "push": True}}]
        b += [{"work": {"seconds": 0.5}}, {"append_done": {"commit": f"done({pid})", "push": True}}]
        builder[pid] = b
        adversary[pid] = a
    return yaml.safe_dump({"phases": builder}), yaml.safe_dump({"phases": adversary})


def manifest(bare: Path, phases: int, rounds: int, timing: dict[str, str]) -> dict[str, Any]:
    builder, adversary = scenarios(phases, rounds)
    return {
        "apiVersion": "loopphase.dev/v1alpha1", "kind": "LoopPhase", "metadata": {"name": "bench"},
        "spec": {
            "repo": {"url": str(bare), "branch": "main"},
            "phases": [{"id": p, "plan": f"plans/{p}.md", "statusFile": f"STATUS-{p}.md"}
                       for p in phase_ids(phases)],
            "agents": {
                "builder": {"backend": "sim", "simScenario": builder, "prompt": {"inline": "Builder."}},
                "adversary": {"backend": "sim", "simScenario": adversary, "prompt": {"inline": "Adversary."}},
            },
            "timing": timing,
            "timeZone": "UTC",
        },
    }


def _ts(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def _jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def pushes(bare: Path) -> list[tuple[float, str]]:
    """(push wall time, subject of the new head) for every push, in order."""
    out = []
    log_path = bare / "push-times.log"
    if not log_path.exists():
        return []
    for line in log_path.read_text().splitlines():
        stamp, sha, _ref = line.split(" ", 2)
        subject = _git("log", "-1", "--format=%s", sha, cwd=bare).strip()
        out.append((float(stamp), subject))
    return out


def analyse(workdir: Path, bare: Path, phases: int) -> dict[str, Any]:
    state = workdir / "state"
    pushed = pushes(bare)
    inputs = {role: _jsonl(state / "logs" / f"{role}.inputs.jsonl") for role in ("builder", "adversary")}
    handoffs: list[float] = []
    unmatched = 0
    for when, subject in pushed:
        if subject.startswith("claim"):
            role, pattern = "adversary", CLAIM_RE
        elif subject.startswith("review"):
            role, pattern = "builder", REVIEW_RE
        else:
            continue
        arrivals = [_ts(r["time"]) for r in inputs[role]
                    if r.get("kind") == "input" and pattern.search(str(r.get("text", ""))) and _ts(r["time"]) >= when]
        if arrivals:
            handoffs.append(min(arrivals) - when)
        else:
            unmatched += 1
    actions = _jsonl(state / "actions.jsonl")
    ids = phase_ids(phases)
    advances: list[float] = []
    advance_actions: list[float] = []
    for when, subject in pushed:
        m = re.match(r"done\((.+)\)", subject)
        if not m or m.group(1) not in ids or ids.index(m.group(1)) + 1 >= len(ids):
            continue
        nxt = ids[ids.index(m.group(1)) + 1]
        starts = []
        for role in ("builder", "adversary"):
            own = [_ts(r["time"]) for r in inputs[role]
                   if r.get("kind") == "argv-prompt" and r.get("phase") == nxt and _ts(r["time"]) >= when]
            if own:
                starts.append(min(own))
        if len(starts) == 2:
            advances.append(max(starts) - when)
        acts = [_ts(a["time"]) for a in actions if a.get("action") == "StartAgent" and _ts(a["time"]) >= when]
        if len(acts) >= 2:
            advance_actions.append(sorted(acts)[1] - when)
    restarts = sum(1 for a in actions if a.get("action") in {"RestartAgent", "RecreateHost"})
    return {
        "pushes": len(pushed), "handoff": summary(handoffs), "handoff_unmatched": unmatched,
        "phase_advance": summary(advances), "phase_advance_start_action": summary(advance_actions),
        "restarts": restarts, "samples": {"handoff": [round(x, 3) for x in handoffs],
                                          "phase_advance": [round(x, 3) for x in advances]},
    }


async def _run_loop(runner: Runner, timeout: float) -> tuple[bool, str]:
    try:
        status = await asyncio.wait_for(runner.run(exit_on_complete=True), timeout=timeout)
        return status.completed_at is not None, status.phase
    except TimeoutError:
        return False, "timed out"


def drive(workdir: Path, spec_path: Path, timeout: float) -> tuple[bool, str, float]:
    """Run the local runner to completion (or timeout); always stop every shim it started,
    also on KeyboardInterrupt (the shims are detached processes and would outlive us)."""
    runner = Runner(load_spec(spec_path), workdir / "state")
    loop = asyncio.new_event_loop()
    try:
        t0 = loop.time()
        completed, phase = loop.run_until_complete(_run_loop(runner, timeout))
        return completed, phase, loop.time() - t0
    finally:
        try:
            loop.run_until_complete(runner.stop_everything())
        finally:
            loop.close()


def run_one(phases: int, rounds: int, timing: dict[str, str], timeout: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="loopphase-bench-lat-") as tmp:
        workdir = Path(tmp)
        bare = build_repo(workdir, phases)
        spec_path = workdir / "bench.yaml"
        spec_path.write_text(yaml.safe_dump(manifest(bare, phases, rounds, timing), sort_keys=False))
        completed, phase, wall = drive(workdir, spec_path, timeout)
        out = analyse(workdir, bare, phases)
    out.update({"completed": completed, "final_phase": phase, "wall_s": round(wall, 1), "timing": timing})
    return out


def _seconds(value: float) -> str:
    return f"{value:g}s"


def run(phases: int = 4, rounds: int = 5, fast_interval: float = 1.0,
        reference_interval: float = 30.0, timeout: float = 3600.0) -> dict[str, Any]:
    scale = reference_interval / 30.0
    # startGrace is part of the workload, equal in both runs: the sim's 1 s of kickoff work is
    # shorter than a reference tick, so with the default 60 s grace an agent never seen working
    # would sit in "Starting" (no pings) for a minute and the figure would measure the grace.
    fast_timing = {"signalInterval": _seconds(fast_interval), "startGrace": "2s"}
    reference_timing = {"signalInterval": _seconds(reference_interval), "startGrace": "2s",
                        "heavyInterval": _seconds(max(1.0, 300.0 * scale)),
                        "limitResetSlack": _seconds(45.0 * scale)}
    fast = run_one(phases, rounds, fast_timing, timeout)
    fast["signal_interval"] = fast_interval
    reference = run_one(phases, rounds, reference_timing, timeout)
    reference["signal_interval"] = reference_interval
    ratios = {m: {q: ratio(reference[m][q], fast[m][q]) for q in ("p50", "p95")}
              for m in ("handoff", "phase_advance")}
    return {"workload": {"phases": phases, "rounds_per_phase": rounds,
                         "claims": phases * rounds, "handoffs": 2 * phases * rounds},
            "fast": fast, "reference": reference, "ratios": ratios}

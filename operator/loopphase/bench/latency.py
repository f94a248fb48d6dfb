"""Handoff, inbox-handoff and phase-advance latency with the local runner and simulated agents.

Workload: ``phases`` phases; in each, ``rounds`` ping-pong rounds (the builder works ~1.5 s,
pushes ``claim(...)``, waits for the review ping; the adversary waits for the claim ping, works
0.5 s, pushes ``review(...): PASS``), then ``inbox_exchanges`` inbox exchanges (the builder
pushes a new ``ADVERSARY-INBOX.md`` and waits for its own inbox ping; the adversary waits for
the inbox ping, works 0.5 s, and in one commit deletes its inbox and writes ``BUILDER-INBOX.md``;
the builder deletes that file once pinged), then the builder works 0.5 s, appends ``## DONE``
and pushes. Every work step before a push gets a seeded random extra in [0, signalInterval)
(before ``## DONE``: in [0, heavyInterval) when DONE is only checked every heavyInterval), so
pushes land at random phases of the tick instead of right after one (no phase-locking);
the draws are fractions, identical for both runs of one seed, scaled by each run's cadence.

The same workload runs with a fast signal interval (``fast``) and with the reference launcher's
cadence expressed as LoopPhase timing (``reference``: signalInterval 30 s, doneOnPush false,
heavyInterval 300 s, limitResetSlack 45 s at full size). ``replicas`` independent copies
(seeds ``seed``, ``seed + 1``, ...) run one after the other for ``fast`` and concurrently for
``reference`` (whose figures are cadence-bound, seconds to minutes, not CPU-bound).

Push time: a ``post-receive`` hook in the bare remote appends ``date +%s.%N`` and the new sha
for every ref update. post-receive runs right after the ref moved, so this is the instant the
push became observable to any fetch (the commit timestamps have 1 s resolution and record
commit time, not push time). Arrival time: the sim agent's input log (one JSON line per typed
line, wall-clock ms). Handoff latency = first matching ping arrival after the push - push time
(claims/reviews: ``handoff``; inbox files: ``inbox_handoff``). Ping-pong makes the pairing
unambiguous: the next push only happens after the ping arrived.

Phase advance latency = ``## DONE`` push -> both roles of the next phase running with their
new kickoff (the later ``argv-prompt`` record of the two sim agents for that phase); also
reported: DONE push -> the runner's second ``StartAgent`` action after it (action log).
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from loopphase.bench.stats import ratio, summary
from loopphase.runner.loop import Runner
from loopphase.runner.specfile import load_spec

GIT_TIMEOUT = 60
WAIT_TIMEOUT = 1800  # a sim agent's wait for a ping; far above any cadence measured here
HOOK = """#!/bin/sh
while read old new ref; do
  echo "$(date +%s.%N) $new $ref" >> "$(dirname "$0")/../push-times.log"
done
"""
CLAIM_RE = re.compile(r"claim", re.IGNORECASE)
REVIEW_RE = re.compile(r"verdict|review", re.IGNORECASE)
INBOX_RE = re.compile(r"INBOX")  # the inbox pings name the file (machine-docs/…-INBOX.md)
ADVERSARY_INBOX = "machine-docs/ADVERSARY-INBOX.md"
BUILDER_INBOX = "machine-docs/BUILDER-INBOX.md"
# push subject prefix -> (bucket, role pinged, pattern of that ping in the role's input log)
HANDOFFS: tuple[tuple[str, str, str, re.Pattern[str]], ...] = (
    ("claim", "handoff", "adversary", CLAIM_RE),
    ("review", "handoff", "builder", REVIEW_RE),
    ("inbox(adversary)", "inbox_handoff", "adversary", INBOX_RE),
    ("inbox(builder)", "inbox_handoff", "builder", INBOX_RE),
)


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


@dataclass(frozen=True)
class Jitter:
    """Seeded extra work before every push: ``fraction × scale`` seconds.

    ``push`` scales the extra before claims, reviews and inbox pushes (the tick:
    signalInterval), ``done`` the extra before ``## DONE`` (the cadence DONE is checked at:
    heavyInterval when doneOnPush is false, else the tick). The fractions depend only on the
    seed and the order of the draws, so both runs of one seed draw the same ones.
    """

    seed: int
    push: float
    done: float


def scenarios(phases: int, rounds: int, jitter: Jitter | None = None,
              inbox_exchanges: int = 0) -> tuple[str, str]:
    rng = random.Random(jitter.seed) if jitter is not None else None

    def extra(kind: str) -> float:
        if rng is None or jitter is None:
            return 0.0
        fraction = rng.random()
        return round(fraction * (jitter.done if kind == "done" else jitter.push), 3)

    builder: dict[str, list[dict[str, Any]]] = {}
    adversary: dict[str, list[dict[str, Any]]] = {}
    for pid in phase_ids(phases):
        b: list[dict[str, Any]] = []
        # The adversary reads its kickoff first (works 1 s), like a real agent does.
        a: list[dict[str, Any]] = [{"work": {"seconds": 1.0}}]
        for i in range(rounds):
            b += [{"work": {"seconds": 1.5 + extra("push")}},
                  {"git": {"commit": f"claim({pid}-g{i}): part {i}", "files": {f"src/{pid}-{i}.txt": f"{i}\n"},
                           "push": True}},
                  {"wait_input": {"match": "verdict|review", "timeout": WAIT_TIMEOUT}}]
            a += [{"wait_input": {"match": "CLAIM", "timeout": WAIT_TIMEOUT}},
                  {"work": {"seconds": 0.5 + extra("push")}},
                  {"git": {"commit": f"review({pid}-g{i}): PASS",
                           "files": {f"machine-docs/REVIEW-{pid}-{i}.md": "PASS\n"}, "push": True}}]
        for k in range(inbox_exchanges):
            # Contents are unique: a rewrite with the same content between two ticks whose
            # deletion no tick saw would (rightly) not ping again.
            b += [{"work": {"seconds": 1.0 + extra("push")}},
                  {"write_file": {"path": ADVERSARY_INBOX, "content": f"note {pid}-{k}\n",
                                  "commit": f"inbox(adversary): note {pid}-{k}", "push": True}},
                  {"wait_input": {"match": "INBOX", "timeout": WAIT_TIMEOUT}},
                  {"delete_file": {"path": BUILDER_INBOX, "commit": f"consumed(builder): {pid}-{k}",
                                   "push": True}}]
            a += [{"wait_input": {"match": "INBOX", "timeout": WAIT_TIMEOUT}},
                  {"work": {"seconds": 0.5 + extra("push")}},
                  {"git": {"commit": f"inbox(builder): reply {pid}-{k}",
                           "files": {BUILDER_INBOX: f"reply {pid}-{k}\n"}, "delete": [ADVERSARY_INBOX],
                           "push": True}}]
        b += [{"work": {"seconds": 0.5 + extra("done")}},
              {"append_done": {"commit": f"done({pid})", "push": True}}]
        builder[pid] = b
        adversary[pid] = a
    return yaml.safe_dump({"phases": builder}), yaml.safe_dump({"phases": adversary})


def manifest(bare: Path, phases: int, rounds: int, timing: dict[str, Any],
             jitter: Jitter | None = None, inbox_exchanges: int = 0) -> dict[str, Any]:
    builder, adversary = scenarios(phases, rounds, jitter, inbox_exchanges)
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
    latencies: dict[str, list[float]] = {"handoff": [], "inbox_handoff": []}
    unmatched = {"handoff": 0, "inbox_handoff": 0}
    for when, subject in pushed:
        kind = next((h for h in HANDOFFS if subject.startswith(h[0])), None)
        if kind is None:
            continue
        _prefix, bucket, role, pattern = kind
        arrivals = [_ts(r["time"]) for r in inputs[role]
                    if r.get("kind") == "input" and pattern.search(str(r.get("text", ""))) and _ts(r["time"]) >= when]
        if arrivals:
            latencies[bucket].append(min(arrivals) - when)
        else:
            unmatched[bucket] += 1
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
        "pushes": len(pushed),
        "handoff": summary(latencies["handoff"]), "handoff_unmatched": unmatched["handoff"],
        "inbox_handoff": summary(latencies["inbox_handoff"]), "inbox_unmatched": unmatched["inbox_handoff"],
        "phase_advance": summary(advances), "phase_advance_start_action": summary(advance_actions),
        "restarts": restarts,
        "samples": {"handoff": [round(x, 3) for x in latencies["handoff"]],
                    "inbox_handoff": [round(x, 3) for x in latencies["inbox_handoff"]],
                    "phase_advance": [round(x, 3) for x in advances],
                    "phase_advance_start_action": [round(x, 3) for x in advance_actions]},
    }


async def _run_loop(runner: Runner, timeout: float) -> tuple[bool, str, float]:
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    try:
        status = await asyncio.wait_for(runner.run(exit_on_complete=True), timeout=timeout)
        return status.completed_at is not None, status.phase, loop.time() - t0
    except TimeoutError:
        return False, "timed out", loop.time() - t0


def drive_many(jobs: list[tuple[Path, Path]], timeout: float) -> list[tuple[bool, str, float]]:
    """Run one local runner per (workdir, spec path), concurrently, each to completion (or its
    timeout); (completed, final phase, wall seconds) per job. Always stops every shim the
    runners started, also on KeyboardInterrupt (the shims are detached processes and would
    outlive us)."""
    runners = [Runner(load_spec(spec_path), workdir / "state") for workdir, spec_path in jobs]
    loop = asyncio.new_event_loop()

    async def _all() -> list[tuple[bool, str, float]]:
        return list(await asyncio.gather(*(_run_loop(r, timeout) for r in runners)))

    async def _stop_all() -> None:
        await asyncio.gather(*(r.stop_everything() for r in runners))

    try:
        return loop.run_until_complete(_all())
    finally:
        try:
            loop.run_until_complete(_stop_all())
        finally:
            loop.close()


def drive(workdir: Path, spec_path: Path, timeout: float) -> tuple[bool, str, float]:
    """One runner: see ``drive_many``."""
    (result,) = drive_many([(workdir, spec_path)], timeout)
    return result


def _seconds(value: float) -> str:
    return f"{value:g}s"


@dataclass(frozen=True)
class Replica:
    seed: int
    workdir: Path
    spec_path: Path
    bare: Path


def prepare(root: Path, phases: int, rounds: int, timing: dict[str, Any], jitters: list[Jitter],
            inbox_exchanges: int) -> list[Replica]:
    """One throwaway repository and spec per jitter (seed), under ``root``."""
    out = []
    for index, jitter in enumerate(jitters):
        workdir = root / f"r{index}"
        workdir.mkdir(parents=True)
        bare = build_repo(workdir, phases)
        spec_path = workdir / "bench.yaml"
        spec_path.write_text(yaml.safe_dump(manifest(bare, phases, rounds, timing, jitter, inbox_exchanges),
                                            sort_keys=False))
        out.append(Replica(jitter.seed, workdir, spec_path, bare))
    return out


def collect(replicas: list[Replica], outcomes: list[tuple[bool, str, float]], phases: int,
            timing: dict[str, Any], *, concurrent: bool) -> dict[str, Any]:
    """Analyse every replica; samples pooled over the replicas."""
    per: list[dict[str, Any]] = []
    for rep, (completed, phase, wall) in zip(replicas, outcomes, strict=True):
        out = analyse(rep.workdir, rep.bare, phases)
        out.update({"seed": rep.seed, "completed": completed, "final_phase": phase, "wall_s": round(wall, 1)})
        per.append(out)
    pooled: dict[str, list[float]] = {}
    for key in ("handoff", "inbox_handoff", "phase_advance", "phase_advance_start_action"):
        pooled[key] = [x for r in per for x in r["samples"][key]]
    result: dict[str, Any] = {key: summary(values) for key, values in pooled.items()}
    result.update({
        "completed": all(r["completed"] for r in per),
        "final_phase": [r["final_phase"] for r in per],
        "restarts": sum(r["restarts"] for r in per),
        "handoff_unmatched": sum(r["handoff_unmatched"] for r in per),
        "inbox_unmatched": sum(r["inbox_unmatched"] for r in per),
        "pushes": sum(r["pushes"] for r in per),
        "replicas": len(per), "concurrent": concurrent,
        "wall_s": round(max(r["wall_s"] for r in per) if concurrent else sum(r["wall_s"] for r in per), 1),
        "timing": timing,
        "samples": pooled,
        "per_replica": [{k: r[k] for k in ("seed", "completed", "final_phase", "wall_s", "pushes", "restarts",
                                           "handoff_unmatched", "inbox_unmatched")} for r in per],
    })
    return result


def run(phases: int = 4, rounds: int = 3, fast_interval: float = 1.0, reference_interval: float = 30.0,
        timeout: float = 3600.0, inbox_exchanges: int = 1, replicas: int = 1, seed: int = 6,
        jitter: bool = True, heavy_interval: float | None = None, side_by_side: bool = False) -> dict[str, Any]:
    """``heavy_interval`` overrides the reference heavyInterval (default 300 s × scale).

    Fast replicas run one after the other (sub-second figures, kept free of contention), the
    reference replicas concurrently (cadence-bound figures); ``side_by_side`` runs everything at
    once (CI: only checks that it runs, the figures are not for reading).
    """
    scale = reference_interval / 30.0
    heavy = heavy_interval if heavy_interval is not None else max(1.0, 300.0 * scale)
    # startGrace is part of the workload, equal in both runs: the sim's 1 s of kickoff work is
    # shorter than a reference tick. stallIdle likewise: with DONE checked every heavyInterval
    # an agent may sit at its prompt for longer than the default 300 s, and a stall nudge or
    # restart there is not what this benchmark measures (restarts are still counted).
    common: dict[str, Any] = {"startGrace": "2s", "stallIdle": "3600s"}
    fast_timing = {"signalInterval": _seconds(fast_interval), **common}
    reference_timing = {"signalInterval": _seconds(reference_interval), "doneOnPush": False,
                        "heavyInterval": _seconds(heavy), "limitResetSlack": _seconds(45.0 * scale), **common}
    seeds = [seed + i for i in range(replicas)]

    def jitters(push: float, done: float) -> list[Jitter]:
        return [Jitter(s, push if jitter else 0.0, done if jitter else 0.0) for s in seeds]

    with tempfile.TemporaryDirectory(prefix="loopphase-bench-lat-") as tmp:
        fast_reps = prepare(Path(tmp) / "fast", phases, rounds, fast_timing,
                            jitters(fast_interval, fast_interval), inbox_exchanges)
        ref_reps = prepare(Path(tmp) / "reference", phases, rounds, reference_timing,
                           jitters(reference_interval, heavy), inbox_exchanges)
        if side_by_side:
            outcomes = drive_many([(r.workdir, r.spec_path) for r in fast_reps + ref_reps], timeout)
            fast_out, ref_out = outcomes[:len(fast_reps)], outcomes[len(fast_reps):]
        else:
            fast_out = [drive(r.workdir, r.spec_path, timeout) for r in fast_reps]
            ref_out = drive_many([(r.workdir, r.spec_path) for r in ref_reps], timeout)
        fast = collect(fast_reps, fast_out, phases, fast_timing, concurrent=side_by_side)
        reference = collect(ref_reps, ref_out, phases, reference_timing, concurrent=True)
    fast["signal_interval"] = fast_interval
    reference["signal_interval"] = reference_interval
    reference["heavy_interval"] = heavy
    ratios = {m: {q: ratio(reference[m][q], fast[m][q]) for q in ("p50", "p95")}
              for m in ("handoff", "inbox_handoff", "phase_advance")}
    return {"workload": {"phases": phases, "rounds_per_phase": rounds, "inbox_exchanges_per_phase": inbox_exchanges,
                         "replicas": replicas, "seeds": seeds, "jitter": jitter, "side_by_side": side_by_side,
                         "claims": replicas * phases * rounds, "handoffs": 2 * replicas * phases * rounds,
                         "inbox_handoffs": 2 * replicas * phases * inbox_exchanges,
                         "phase_advances": replicas * (phases - 1)},
            "fast": fast, "reference": reference, "ratios": ratios}

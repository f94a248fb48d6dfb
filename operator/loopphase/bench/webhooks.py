"""Push webhooks vs polling: handoff latency and git requests per LoopPhase per hour.

Three local runs in one benchmark run, each on its own bare repository
with the same seeded workload (``latency.scenarios``: claim -> review ping-pong rounds, then
``## DONE``), each push time logged by the repository's ``post-receive`` hook:

- ``poll-1s``: today's default, signalInterval 1 s, the remote polled every tick;
- ``poll-30s``: the reference launcher's cadence, signalInterval 30 s (scaled down at small
  sizes, see ``slow_interval``);
- ``webhook``: signalInterval 1 s for the agents, push webhooks from the same ``post-receive``
  hook ``loopphase hook install`` writes (HMAC-signed, to the run's receiver on loopback), and
  the remote polled only every ``webhook_poll`` seconds (60 s) as the safety net.

The slow mode runs beside the other two (its figures are cadence-bound, and it is idle between
its ticks); the two sub-second modes run one after the other, so they never compete with each
other for the event loop and the CPU.

Figures per mode: handoff latency (push -> ping typed into the other agent, from the sim
agent's input log, as in ``latency``), phase advance latency, the git requests the supervisor
made during the run (``ls-remote`` + ``fetch`` of the run's watcher, per hour of the run's wall
time), and the idle cost: git requests per LoopPhase per hour with nothing pushed, counted by
running the mode's tick-side observe loop (one observe per signalInterval, exactly what the
tick calls) against a real repository on a simulated clock for ``idle_seconds`` (the request
schedule is the memo/poll logic's, so a simulated hour counts the same requests as a real one
without waiting for it).

Target (issue 16): webhook handoff p95 <= 0.5 s with <= 60 git requests per LoopPhase per
hour when idle.
"""

from __future__ import annotations

import asyncio
import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from loopphase.bench import latency
from loopphase.bench.stats import summary
from loopphase.git import WatcherRegistry
from loopphase.git.source import WatchedRemote
from loopphase.runner.loop import Runner
from loopphase.runner.specfile import load_spec
from loopphase.runner.webhook import LocalWebhookConfig
from loopphase.webhook.hook_cli import install

WRAPPER = """#!/bin/sh
# push time for the benchmark, then the loopphase webhook hook with the same input
input=$(cat)
printf '%s\\n' "$input" | while read old new ref; do
  echo "$(date +%s.%N) $new $ref" >> "$(dirname "$0")/../push-times.log"
done
printf '%s\\n' "$input" | "$(dirname "$0")/post-receive.loopphase"
"""
HANDOFF_TARGET_P95 = 0.5
IDLE_REQUESTS_TARGET = 60.0


@dataclass
class Mode:
    name: str
    signal_interval: float
    webhook_poll: float | None = None  # None: no webhook, the remote polled every tick
    results: dict[str, Any] = field(default_factory=dict)

    @property
    def webhook(self) -> bool:
        return self.webhook_poll is not None


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def idle_requests(bare: Path, cache: Path, mode: Mode, idle_seconds: float) -> dict[str, Any]:
    """git requests of the tick's observe loop over ``idle_seconds`` of simulated time with no
    push (one observe per signalInterval, the registry's 1 s memo, the mode's poll)."""
    clock = _Clock()
    registry = WatcherRegistry(cache, clock=clock)
    source = WatchedRemote(registry, str(bare), "main", webhooks=mode.webhook,
                           poll_interval=mode.webhook_poll or 0.0)
    watcher = source.watcher()
    paths = ["machine-docs/STATUS-b1.md"]
    cursor = watcher.observe(None, paths, source.poll_interval if mode.webhook else None).head
    before = watcher.ls_remotes + watcher.fetches
    ticks = 0
    while clock.now < idle_seconds:
        clock.now += mode.signal_interval
        ticks += 1
        obs = watcher.observe(cursor, paths, source.poll_interval if mode.webhook else None)
        cursor = obs.head or cursor
    requests = watcher.ls_remotes + watcher.fetches - before
    return {"simulated_seconds": idle_seconds, "ticks": ticks, "requests": requests,
            "per_hour": round(requests * 3600.0 / idle_seconds, 1)}


def _webhook_arrivals(bare: Path, runner: Runner) -> list[float]:
    """Seconds from each push (the post-receive log) to its webhook's arrival at the receiver
    (matched by the pushed sha); empty without webhooks."""
    if runner.webhooks is None:
        return []
    pushed: dict[str, float] = {}
    log_path = bare / "push-times.log"
    for line in log_path.read_text().splitlines() if log_path.exists() else []:
        stamp, sha, _ref = line.split(" ", 2)
        pushed.setdefault(sha, float(stamp))
    return [n.received_at.timestamp() - pushed[n.after] for n in runner.webhooks.notices
            if n.after in pushed]


def _prepare(root: Path, mode: Mode, phases: int, rounds: int, inbox: int, seed: int) -> tuple[Path, Path]:
    workdir = root / mode.name
    workdir.mkdir(parents=True)
    bare = latency.build_repo(workdir, phases)
    timing = {"signalInterval": f"{mode.signal_interval:g}s", "startGrace": "2s", "stallIdle": "3600s"}
    jitter = latency.Jitter(seed, mode.signal_interval, mode.signal_interval)
    doc = latency.manifest(bare, phases, rounds, timing, jitter, inbox)
    if mode.webhook:
        doc["spec"]["repo"]["webhook"] = {"pollInterval": f"{mode.webhook_poll:g}s"}
    spec_path = workdir / "bench.yaml"
    spec_path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return workdir, spec_path


async def _drive(modes: list[Mode], jobs: list[tuple[Path, Path]], timeout: float
                 ) -> list[tuple[Runner, tuple[bool, str, float]]]:
    runners: list[Runner] = []
    for mode, (workdir, spec_path) in zip(modes, jobs, strict=True):
        config = None
        if mode.webhook:
            secret_file = workdir / "hook.secret"
            secret_file.write_text(secrets.token_hex(32) + "\n")
            config = LocalWebhookConfig("127.0.0.1", 0, secret_file.read_bytes().strip(),
                                        poll_interval=mode.webhook_poll or 60.0)
        runner = Runner(load_spec(spec_path), workdir / "state", webhook=config)
        if runner.webhooks is not None:
            url = await runner.webhooks.start()
            hooks = workdir / "origin.git" / "hooks"
            install(workdir / "origin.git", url=url, secret_file=workdir / "hook.secret",
                    output=hooks / "post-receive.loopphase")
            (hooks / "post-receive").write_text(WRAPPER)
        runners.append(runner)
    fast = [i for i, m in enumerate(modes) if m.signal_interval <= 1.0]
    slow = [i for i in range(len(modes)) if i not in fast]

    async def one_after_another() -> list[tuple[bool, str, float]]:
        return [await latency._run_loop(runners[i], timeout) for i in fast]

    try:
        # The cadence-bound slow mode runs beside the others; the sub-second ones run one after
        # the other so they never share the event loop and the CPU with each other.
        fast_out, slow_out = await asyncio.gather(
            one_after_another(),
            asyncio.gather(*(latency._run_loop(runners[i], timeout) for i in slow)))
        by_index = dict(zip(fast, fast_out, strict=True)) | dict(zip(slow, slow_out, strict=True))
        outcomes = [by_index[i] for i in range(len(modes))]
    finally:
        await asyncio.gather(*(r.stop_everything() for r in runners))
    return list(zip(runners, outcomes, strict=True))


def run(phases: int = 2, rounds: int = 3, inbox_exchanges: int = 0, fast_interval: float = 1.0,
        slow_interval: float = 30.0, webhook_poll: float = 60.0, idle_seconds: float = 3600.0,
        timeout: float = 1800.0, seed: int = 16) -> dict[str, Any]:
    modes = [Mode(f"poll-{fast_interval:g}s", fast_interval),
             Mode(f"poll-{slow_interval:g}s", slow_interval),
             Mode(f"webhook+poll-{webhook_poll:g}s", fast_interval, webhook_poll)]
    with tempfile.TemporaryDirectory(prefix="loopphase-bench-hook-") as tmp:
        root = Path(tmp)
        jobs = [_prepare(root, m, phases, rounds, inbox_exchanges, seed) for m in modes]
        driven = asyncio.run(_drive(modes, jobs, timeout))
        for mode, (workdir, _), (runner, (completed, phase, wall)) in zip(modes, jobs, driven, strict=True):
            analysed = latency.analyse(workdir, workdir / "origin.git", phases)
            watcher = runner.git.watcher()
            final = runner.store.load()
            run_requests = watcher.ls_remotes + watcher.fetches
            arrivals = _webhook_arrivals(workdir / "origin.git", runner)
            mode.results = {
                "signal_interval": mode.signal_interval, "webhook_poll": mode.webhook_poll,
                "completed": completed, "final_phase": phase, "wall_s": round(wall, 1),
                "handoff": analysed["handoff"], "handoff_unmatched": analysed["handoff_unmatched"],
                "phase_advance": analysed["phase_advance"], "pushes": analysed["pushes"],
                "samples": analysed["samples"],
                "run_git_requests": {"ls_remote": watcher.ls_remotes, "fetch": watcher.fetches,
                                     "head_reads_by_cause": dict(watcher.reads_by),
                                     "per_hour": round(run_requests * 3600.0 / max(wall, 1e-9), 1)},
                "push_to_webhook": summary(arrivals),
                "heads_by_webhook": final.git.heads_by_webhook,
                "heads_by_poll": final.git.heads_by_poll,
                "webhooks": (runner.webhooks.receiver.counters.as_dict()
                             if runner.webhooks is not None else None),
                "idle": idle_requests(workdir / "origin.git", workdir / "idle-cache", mode,
                                      idle_seconds),
            }
    hook = modes[2].results
    p95 = hook["handoff"]["p95"]
    return {
        "workload": {"phases": phases, "rounds_per_phase": rounds,
                     "inbox_exchanges_per_phase": inbox_exchanges, "seed": seed,
                     "handoffs_per_mode": 2 * phases * rounds,
                     "schedule": "slow mode beside the fast ones; the fast ones in sequence"},
        "modes": {m.name: m.results for m in modes},
        "order": [m.name for m in modes],
        "targets": {
            "webhook_handoff_p95_s": HANDOFF_TARGET_P95,
            "webhook_idle_requests_per_hour": IDLE_REQUESTS_TARGET,
            "handoff_met": p95 is not None and p95 <= HANDOFF_TARGET_P95,
            "idle_met": hook["idle"]["per_hour"] <= IDLE_REQUESTS_TARGET,
        },
    }


def _per_push(mode: dict[str, Any]) -> float:
    """git requests of the run per push (ls-remote + fetch, the first look included)."""
    reqs = mode["run_git_requests"]
    return (reqs["ls_remote"] + reqs["fetch"]) / max(1, mode["pushes"])


def rows(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Table rows for ``loopphase bench``: the three modes side by side."""
    def fmt(v: Any) -> str:
        return "-" if v is None else f"{v:.2f}s"

    out = []
    for name in result["order"]:
        r = result["modes"][name]
        note = ""
        if r["webhook_poll"] is not None:
            t = result["targets"]
            note = (f"p95 <= {t['webhook_handoff_p95_s']}s {'OK' if t['handoff_met'] else 'MISSED'}, "
                    f"idle <= {t['webhook_idle_requests_per_hour']:g}/h "
                    f"{'OK' if t['idle_met'] else 'MISSED'}")
        out.append((
            f"webhooks: {name}",
            f"handoff p50/p95 {fmt(r['handoff']['p50'])} / {fmt(r['handoff']['p95'])} (n={r['handoff']['n']})"
            f"  advance p50 {fmt(r['phase_advance']['p50'])}"
            + (f"  push->webhook p95 {fmt(r['push_to_webhook']['p95'])}"
               if r.get("push_to_webhook", {}).get("n") else "")
            + f"  git req/LoopPhase/h idle {r['idle']['per_hour']:g}"
            f"  git req per push {_per_push(r):.2f}",
            note or "-",
        ))
    return out



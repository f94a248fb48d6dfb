"""Push webhooks vs polling: handoff latency and git requests per LoopPhase per hour.

Three local runs side by side (one event loop, concurrently), each on its own bare repository
with the same seeded workload (``latency.scenarios``: claim -> review ping-pong rounds, then
``## DONE``), each push time logged by the repository's ``post-receive`` hook:

- ``poll-1s``: today's default, signalInterval 1 s, the remote polled every tick;
- ``poll-30s``: the reference launcher's cadence, signalInterval 30 s (scaled down at small
  sizes, see ``slow_interval``);
- ``webhook``: signalInterval 1 s for the agents, push webhooks from the same ``post-receive``
  hook ``loopphase hook install`` writes (HMAC-signed, to the run's receiver on loopback), and
  the remote polled only every ``webhook_poll`` seconds (60 s) as the safety net.

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
    try:
        outcomes = await asyncio.gather(*(latency._run_loop(r, timeout) for r in runners))
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
            mode.results = {
                "signal_interval": mode.signal_interval, "webhook_poll": mode.webhook_poll,
                "completed": completed, "final_phase": phase, "wall_s": round(wall, 1),
                "handoff": analysed["handoff"], "handoff_unmatched": analysed["handoff_unmatched"],
                "phase_advance": analysed["phase_advance"], "pushes": analysed["pushes"],
                "samples": analysed["samples"],
                "run_git_requests": {"ls_remote": watcher.ls_remotes, "fetch": watcher.fetches,
                                     "head_reads_by_cause": dict(watcher.reads_by),
                                     "per_hour": round(run_requests * 3600.0 / max(wall, 1e-9), 1)},
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
                     "handoffs_per_mode": 2 * phases * rounds, "side_by_side": True},
        "modes": {m.name: m.results for m in modes},
        "order": [m.name for m in modes],
        "targets": {
            "webhook_handoff_p95_s": HANDOFF_TARGET_P95,
            "webhook_idle_requests_per_hour": IDLE_REQUESTS_TARGET,
            "handoff_met": p95 is not None and p95 <= HANDOFF_TARGET_P95,
            "idle_met": hook["idle"]["per_hour"] <= IDLE_REQUESTS_TARGET,
        },
    }


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
            f"  git req/LoopPhase/h idle {r['idle']['per_hour']:g}, in run {r['run_git_requests']['per_hour']:g}",
            note or "-",
        ))
    return out



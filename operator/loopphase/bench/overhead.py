"""What metrics and notifications add to a tick: the same ticks with them off, then on.

For each size (``loops`` LoopPhases, 2 agents each) the decision part of ``N`` ticks per loop is
run in one event loop, as the operator runs it (``operator/handlers.py``'s ``tick`` between the
observations and the API writes, which are left out: they are the same either way):

- ``off``: ``reconcile`` only (no ``spec.notify``, no metrics);
- ``metrics``: plus ``record_tick`` into a ``LoopMetrics`` registry (counters, histograms, the
  agent/limit gauges re-summed over every loop);
- ``notify``: plus ``notify.fold`` (the outbox from the tick's history) and
  ``Notifier.submit``: every notifiable entry is POSTed by a background task to a real HTTP
  receiver on loopback (a separate process, so its work is not counted); a round's deliveries
  finish before the next round, as they do between real ticks seconds apart;
- ``both``: metrics and notifications.

Two workloads: ``steady`` (the idempotent tick: nothing happens, the common case) and
``eventful`` (the builder's usage-limit window arms and lifts on alternate ticks, so every
tick has a notifiable ``limit-armed``/``limit-lifted`` entry: an upper bound, far busier than a
real loop). Figures: the tick's own time (``time.perf_counter`` around the synchronous part,
p50/p95 µs per loop-tick) and the process CPU per loop-tick over the whole run (``process_time``,
which includes the delivery tasks), and each mode's overhead over ``off``.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry

from loopphase.api.spec import LoopPhaseSpec
from loopphase.api.status import LoopPhaseStatus
from loopphase.bench.core import PANE_ACTIVE, PANE_BANNER, _agent, _git, make_spec, realistic_status
from loopphase.core.observations import GitObservation, Observations
from loopphase.core.reconcile import reconcile
from loopphase.metrics import LoopMetrics, record_tick
from loopphase.notify import Notifier, fold

MODES = ("off", "metrics", "notify", "both")
WORKLOADS = ("steady", "eventful")
TICK = timedelta(seconds=5)
DRAIN_TIMEOUT = 30.0  # seconds for the last deliveries after the run

# A receiver in its own process: answers 204 to every POST and counts them on stdout at exit.
RECEIVER = """
import http.server, sys
count = 0
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        global count
        self.rfile.read(int(self.headers.get('Content-Length') or 0))
        count += 1
        self.send_response(204); self.end_headers()
    def log_message(self, *a): pass
class S(http.server.ThreadingHTTPServer):
    request_queue_size = 512  # a fleet's deliveries arrive together (socketserver's default: 5)
    daemon_threads = True
server = S(('127.0.0.1', 0), H)
print(server.server_address[1], flush=True)
try:
    server.serve_forever()
except KeyboardInterrupt:
    pass
finally:
    print(count, flush=True)
"""


def notify_spec(spec: LoopPhaseSpec) -> LoopPhaseSpec:
    """``spec`` with one webhook subscribed to every kind (its URL comes from the resolver)."""
    data = spec.model_dump(by_alias=True, exclude_none=True)
    data["notify"] = {"webhooks": [{"name": "bench", "urlEnv": "LOOPPHASE_BENCH_HOOK"}]}
    return LoopPhaseSpec.model_validate(data)


def _observations(workload: str, tick: int, now: datetime) -> Observations:
    files = _git("c1").files
    if workload == "steady":
        return Observations(
            {"builder": _agent("builder", PANE_BANNER, now), "adversary": _agent("adversary", PANE_ACTIVE, now)},
            GitObservation(reachable=True, head="c100", commits=(), files=files))
    # eventful: the banner (arms the window) and an active builder (lifts it) alternate
    builder = PANE_BANNER if tick % 2 == 0 else PANE_ACTIVE.replace("12s", f"{tick}s")
    return Observations(
        {"builder": _agent("builder", builder, now), "adversary": _agent("adversary", PANE_ACTIVE, now)},
        GitObservation(reachable=True, head="c100", commits=(), files=files))


async def _settle(notifiers: list[Notifier]) -> None:
    """Until no delivery is in flight (at most DRAIN_TIMEOUT seconds)."""
    deadline = time.perf_counter() + DRAIN_TIMEOUT
    await asyncio.sleep(0)
    while any(n.in_flight for n in notifiers) and time.perf_counter() < deadline:
        await asyncio.sleep(0.001)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def _run_mode(mode: str, workload: str, loops: int, ticks: int, url: str) -> dict[str, Any]:
    with_metrics, with_notify = mode in ("metrics", "both"), mode in ("notify", "both")
    base = make_spec()
    spec = notify_spec(base) if with_notify else base
    start, t0 = realistic_status(base)
    # The steady workload starts from a settled status (its first ticks would not be steady).
    if workload == "steady":
        obs = _observations("steady", 0, t0)
        for _ in range(2):
            _, start = reconcile(spec, start, obs, t0)
    statuses: list[LoopPhaseStatus] = [start] * loops
    metrics = LoopMetrics(CollectorRegistry()) if with_metrics else None

    async def resolve(_: Any) -> str:
        return url

    notifiers = [Notifier(f"loop-{i}", resolve) for i in range(loops)] if with_notify else []
    samples: list[float] = []
    submitted = delivered = 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    try:
        for tick in range(ticks):
            now = t0 + TICK * (tick + 1)
            obs = _observations(workload, tick, now)
            for i in range(loops):
                began = time.perf_counter()
                before = statuses[i]
                actions, after = reconcile(spec, before, obs, now)
                results = [(action, True, "") for action in actions]
                if with_notify:
                    outcomes = notifiers[i].drain()
                    delivered += sum(1 for o in outcomes if o.ok)
                    after = fold(spec, before, after, outcomes)
                if metrics is not None:
                    record_tick(metrics, f"loop-{i}", before, after, actions, results, obs,
                                started=now, finished=now, seconds=time.perf_counter() - began)
                if with_notify:
                    submitted += notifiers[i].submit(spec.notify, after.notifications.outbox, now)
                statuses[i] = after
                samples.append(time.perf_counter() - began)
            # A real tick interval (seconds) is far longer than a delivery (milliseconds): the
            # round's deliveries finish before the next round, polled with a deadline. Their
            # CPU is in the process time; the tick samples above are not waiting for them.
            await _settle(notifiers)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        delivered += sum(1 for n in notifiers for o in n.drain() if o.ok)
    finally:
        for notifier in notifiers:
            await notifier.close()
    n = loops * ticks
    return {
        "tick_us": {"p50": round(_percentile(samples, 0.5) * 1e6, 1),
                    "p95": round(_percentile(samples, 0.95) * 1e6, 1),
                    "mean": round(statistics.fmean(samples) * 1e6, 1)},
        "cpu_us_per_loop_tick": round(cpu / n * 1e6, 1),
        "wall_s": round(wall, 3),
        "notifications_submitted": submitted,
        "notifications_delivered": delivered,
    }


def _overheads(modes: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    off = modes["off"]
    out = {}
    for mode in MODES[1:]:
        m = modes[mode]
        out[mode] = {
            "tick_p50_us": round(m["tick_us"]["p50"] - off["tick_us"]["p50"], 1),
            "tick_p50_pct": round((m["tick_us"]["p50"] / off["tick_us"]["p50"] - 1) * 100, 1),
            "cpu_us_per_loop_tick": round(m["cpu_us_per_loop_tick"] - off["cpu_us_per_loop_tick"], 1),
            "cpu_pct": round((m["cpu_us_per_loop_tick"] / off["cpu_us_per_loop_tick"] - 1) * 100, 1),
        }
    return out


def run(sizes: list[int] | None = None, ticks: int = 40) -> dict[str, Any]:
    """``sizes``: numbers of LoopPhases (2 agents each); ``ticks`` per LoopPhase and mode."""
    sizes = sizes or [1, 10]
    receiver = subprocess.Popen([sys.executable, "-c", RECEIVER], stdout=subprocess.PIPE, text=True)
    try:
        assert receiver.stdout is not None
        port = int(receiver.stdout.readline())
        url = f"http://127.0.0.1:{port}/hook"
        runs = []
        for loops in sizes:
            for workload in WORKLOADS:
                modes = {mode: asyncio.run(_run_mode(mode, workload, loops, ticks, url)) for mode in MODES}
                runs.append({"loops": loops, "agents": 2 * loops, "ticks": ticks, "workload": workload,
                             "modes": modes, "overhead": _overheads(modes)})
    finally:
        receiver.send_signal(2)  # SIGINT: the receiver prints its count and exits
        try:
            out, _ = receiver.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            receiver.kill()
            out, _ = receiver.communicate(timeout=10)
    received = out.strip().splitlines()
    return {"runs": runs, "receiver_posts": int(received[-1]) if received else None}


def rows(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Table rows for ``loopphase bench``."""
    out = []
    for r in results["runs"]:
        off = r["modes"]["off"]
        label = f"tick overhead, {r['workload']}, {r['loops']} loops ({r['agents']} agents)"
        parts = [f"off {off['tick_us']['p50']:.0f} µs"]
        parts += [f"{mode} +{r['overhead'][mode]['tick_p50_us']:.0f} µs ({r['overhead'][mode]['tick_p50_pct']:+.0f}%)"
                  for mode in MODES[1:]]
        cpu = r["overhead"]["both"]
        out.append((label, ", ".join(parts),
                    f"CPU both {cpu['cpu_us_per_loop_tick']:+.0f} µs/loop-tick ({cpu['cpu_pct']:+.0f}%)"))
    return out

"""Operator scale: N LoopPhases × 3 agents on one operator, against the kmock API emulator.

Layout (two processes, so the operator's CPU and RSS are measured alone):

* **this process** serves the world: the kmock Kubernetes emulator, a fake kubelet (sets every
  new agent pod Running with its own loopback podIP 127.0.x.y) and a SIMULATED SHIM FLEET: one
  aiohttp server bound to 0.0.0.0:<port> answering ``/v1/health`` and ``/v1/state`` for every
  pod, which it tells apart by the local address the request arrived on (the pod's IP). The
  builders show a working Claude Code pane, adversaries and orchestrators an idle prompt.
* **a child process** runs the real operator (kopf + our registry, the real ``ShimClient`` over
  HTTP, the real git watcher against one local bare repository shared by all LoopPhases). The
  benchmark wraps ``loopphase.operator.handlers.tick`` (the daemon's per-LoopPhase tick) to time
  each tick; the product code is not modified for it.

Per N: the LoopPhases are created, the benchmark waits until every one reports ``ready 3/3``
and then ``settle`` seconds more, then measures a ``window``: operator CPU seconds (psutil,
user+system) ÷ ticks ÷ 3 agents, peak RSS (sampled, and the child's ru_maxrss), kmock requests
by action and resource (per tick), tick duration p50/p95. Each N runs in a fresh world.
Extrapolation to 1,000 agents: CPU share = cpu_s_per_tick_per_agent × 1000 / interval;
RSS = idle operator RSS + 1000 × (steady RSS − idle RSS) / agents, using the largest N.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
from aiohttp import web

from loopphase.bench.stats import summary
from loopphase.testing.kmock_world import declare_resources

MIB = 1024 * 1024
NS = "bench"
AGENTS_PER_LOOP = 3
TARGET_AGENTS = 1000
TARGET_CORE = 0.25
TARGET_MIB = 400.0
KUBELET_POLL = 0.25
CHILD_READY_TIMEOUT = 60.0
CHILD_STOP_TIMEOUT = 60.0

_BOX = "╭" + "─" * 78 + "╮\n│ > " + " " * 75 + "│\n╰" + "─" * 78 + "╯\n  ? for shortcuts"
_SCROLLBACK = "".join(
    f"  tests/unit/test_module_{i:02d}.py::test_case_{i:02d} PASSED{' ' * 20}[{i * 3:3d}%]\n"
    for i in range(1, 34)
)
ACTIVE_PANE = (
    _SCROLLBACK
    + "\n● I'll run the unit tests again after the fix.\n\n"
    + "● Bash(python -m pytest -q tests/unit)\n  ⎿  Running…\n\n"
    + "✻ Cogitating… (42s · ↑ 1.3k tokens · esc to interrupt)\n\n" + _BOX
)
IDLE_PANE = (
    _SCROLLBACK
    + "\n● All 33 tests pass. I pushed the review and am waiting for the next claim.\n\n" + _BOX
)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def pod_ip(index: int) -> str:
    """The index-th pod's loopback address: 127.0.1.2, 127.0.1.3, ... (250 per /24)."""
    return f"127.0.{1 + index // 250}.{2 + index % 250}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        return int(sock.getsockname()[1])


# -- the world: shim fleet + fake kubelet ----------------------------------------------------


class ShimFleet:
    """One aiohttp server standing in for every agent pod's shim (keyed by local address)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.pods: dict[str, dict[str, Any]] = {}  # podIP -> answer fields
        self.calls: Counter[str] = Counter()
        self.unknown = 0
        self._runner: web.AppRunner | None = None
        self.started_at = datetime.now(UTC) - timedelta(minutes=5)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/v1/health", self._health)
        app.router.add_get("/v1/state", self._state)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, "0.0.0.0", self.port).start()

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _pod(self, request: web.Request) -> dict[str, Any] | None:
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        return self.pods.get(sockname[0]) if sockname else None

    async def _health(self, request: web.Request) -> web.Response:
        self.calls["health"] += 1
        return web.json_response({"ok": True})

    async def _state(self, request: web.Request) -> web.Response:
        self.calls["state"] += 1
        pod = self._pod(request)
        if pod is None:
            self.unknown += 1
            return web.json_response({"error": "no such pod"}, status=404)
        if not request.headers.get("Authorization", "").startswith("Bearer "):
            return web.json_response({"error": "unauthorized"}, status=401)
        lines = int(request.query.get("lines", "60"))
        active = pod["role"] == "builder"
        pane = ACTIVE_PANE if active else IDLE_PANE
        changed = datetime.now(UTC) if active else self.started_at
        return web.json_response({
            "version": "bench", "role": pod["role"], "backend": "claude",
            "phaseIndex": pod["phase_index"], "phaseId": pod["phase_id"], "alive": True,
            "pid": 4242, "startedAt": _iso(pod["started_at"]), "mode": "cold", "restarts": 0,
            "pane": "\n".join(pane.splitlines()[-lines:]),
            "lastChangeAt": _iso(changed),
            "secondsSinceChange": (datetime.now(UTC) - changed).total_seconds(),
            "sessionId": None, "hookEvents": [], "sendInFlight": False,
        })


class FakeKubelet:
    """Polls kmock's stored pods: new ones get a uid, a loopback podIP and phase Running."""

    def __init__(self, kmock: Any, fleet: ShimFleet) -> None:
        from loopphase.operator.kubeapi import KubeApi, configuration_for

        self.kmock = kmock
        self.fleet = fleet
        # Pods are written through the API, as a kubelet does: only API writes reach kmock's
        # watch streams, and the operator reads pods from a watch-fed index.
        self.api = KubeApi(configuration_for(str(kmock.url)), timeout=30.0)
        self.by_name: dict[str, str] = {}  # pod name -> uid
        self._next = 0
        self._task: asyncio.Task[None] | None = None
        self.errors: list[str] = []

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.api.close()

    async def _loop(self) -> None:
        while True:
            try:
                await self.sync()
            except Exception as err:  # noqa: BLE001 - recorded in the results
                self.errors.append(repr(err))
            await asyncio.sleep(KUBELET_POLL)  # the kubelet's own poll period

    async def sync(self) -> None:
        from loopphase.operator.kubeapi import core_ref
        from loopphase.runtime import k8s_objects as ko

        seen: set[str] = set()
        for (res, namespace, name), stored in list(self.kmock.objects.items()):
            if res.plural != "pods" or namespace != NS or stored.deleted:
                continue
            seen.add(name)
            raw = stored.raw
            meta = raw.get("metadata") or {}
            if self.by_name.get(name) == meta.get("uid") and meta.get("uid"):
                continue
            uid = f"pod-{self._next}"
            ip = pod_ip(self._next)
            self._next += 1
            await self.api.merge_patch(core_ref(NS, "pods", name), {
                "metadata": {"uid": uid, "creationTimestamp": _iso(datetime.now(UTC))},
                "status": {"phase": "Running", "podIP": ip,
                           "containerStatuses": [{"name": "agent", "ready": True,
                                                  "restartCount": 0}]}})
            labels = meta.get("labels") or {}
            ann = meta.get("annotations") or {}
            self.by_name[name] = uid
            self.fleet.pods[ip] = {
                "name": name, "role": labels.get(ko.LABEL_ROLE, "builder"),
                "phase_index": int(ann.get(ko.ANN_PHASE_INDEX, "0")),
                "phase_id": labels.get(ko.LABEL_PHASE), "started_at": datetime.now(UTC),
            }
        for name in set(self.by_name) - seen:
            del self.by_name[name]


class RequestCounter:
    """Counts kmock's requests by action and resource, and empties kmock's request log.

    kmock keeps every request and matches each new one against the whole log (quadratic);
    draining it every ``DRAIN`` seconds keeps the emulator's cost flat over a long run.
    """

    DRAIN = 0.5

    def __init__(self, kmock: Any) -> None:
        self.kmock = kmock
        self.actions: Counter[str] = Counter()
        self.detail: Counter[str] = Counter()
        self.writes_sample: list[dict[str, Any]] = []
        self.keep_samples = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.drain()

    async def _loop(self) -> None:
        while True:
            self.drain()
            await asyncio.sleep(self.DRAIN)  # drain period

    def drain(self) -> None:
        log: list[Any] = self.kmock._requests
        batch = log[:]
        del log[:len(batch)]
        for req in batch:
            action = req.action.value if req.action is not None else str(req.method)
            plural = req.resource.plural if req.resource is not None else "other"
            if req.subresource:
                plural += "/" + req.subresource
            self.actions[action] += 1
            self.detail[f"{action} {plural}"] += 1
            if self.keep_samples and action in WRITE_ACTIONS and len(self.writes_sample) < 3:
                self.writes_sample.append({"path": str(req.url.path), "body": req.data})

    def snapshot(self) -> tuple[Counter[str], Counter[str]]:
        self.drain()
        return Counter(self.actions), Counter(self.detail)


WRITE_ACTIONS = {"CREATE", "PATCH", "UPDATE", "DELETE"}
COUNTED_ACTIONS = ("FETCH", "LIST", "WATCH", "CREATE", "UPDATE", "DELETE")


def lp_body(index: int, url: str, interval: float) -> dict[str, Any]:
    name = f"lp-{index:04d}"
    return {
        "apiVersion": "loopphase.dev/v1alpha1", "kind": "LoopPhase",
        "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}", "generation": 1,
                     "resourceVersion": "1"},
        "spec": {
            "repo": {"url": url, "branch": "main"},
            "phases": [{"id": "p1", "plan": "PLAN-1.md", "statusFile": "STATUS-1.md"},
                       {"id": "p2", "plan": "PLAN-2.md", "statusFile": "STATUS-2.md"}],
            "agents": {"builder": {"backend": "claude"}, "adversary": {"backend": "claude"},
                       "orchestrator": {"backend": "claude"}},
            # idle agents are not nudged within the run (stallIdle), none is "starting" long
            "timing": {"signalInterval": interval, "startGrace": 1, "stallIdle": 3600},
        },
    }


def _git(*args: str, cwd: Path | None = None) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def bare_repo(root: Path) -> Path:
    origin, work = root / "origin.git", root / "seed"
    _git("init", "-q", "--bare", "-b", "main", str(origin))
    _git("init", "-q", "-b", "main", str(work))
    _git("config", "user.email", "bench@loopphase.invalid", cwd=work)
    _git("config", "user.name", "bench", cwd=work)
    (work / "PLAN-1.md").write_text("plan 1\n")
    (work / "PLAN-2.md").write_text("plan 2\n")
    _git("add", "-A", cwd=work)
    _git("commit", "-q", "-m", "init", cwd=work)
    _git("push", "-q", str(origin), "main", cwd=work)
    return origin


# -- the operator child ------------------------------------------------------------------------


def child_main(argv: list[str]) -> int:
    """The operator process: kopf + our registry; the daemon's tick timed by a wrapper."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--shim-port", type=int, required=True)
    parser.add_argument("--git-cache", required=True)
    parser.add_argument("--stats", required=True)
    parser.add_argument("--ready", required=True)
    args = parser.parse_args(argv)

    import logging

    import kopf

    from loopphase.operator import handlers
    from loopphase.operator.context import OperatorContext
    from loopphase.operator.kubeapi import configuration_for
    from loopphase.operator.settings import configure
    from loopphase.runtime import k8s_objects as ko

    logging.basicConfig(level=logging.ERROR)
    ticks: list[tuple[float, float, bool]] = []
    original = handlers.tick

    async def timed_tick(*a: Any, **kw: Any) -> float:
        start, p0 = time.time(), time.perf_counter()
        ok = False
        try:
            delay = await original(*a, **kw)
            ok = True
            return delay
        finally:
            ticks.append((start, time.perf_counter() - p0, ok))

    handlers.tick = timed_tick  # type: ignore[assignment]

    profile_path = os.environ.get("LOOPPHASE_BENCH_PROFILE")
    profiler: Any = None
    if profile_path:  # diagnosis only: cProfile of the steady-state window (SIGUSR2 .. SIGUSR1)
        import cProfile

        profiler = cProfile.Profile()

    def dump() -> None:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(profile_path)
        tmp = Path(args.stats + ".tmp")
        usage = resource.getrusage(resource.RUSAGE_SELF)
        tmp.write_text(json.dumps({"ticks": ticks, "ru_maxrss_kib": usage.ru_maxrss}))
        tmp.replace(args.stats)

    ctx = OperatorContext(pod_settings=ko.PodSettings(shim_port=args.shim_port),
                          git_cache=Path(args.git_cache))
    if os.environ.get("LOOPPHASE_BENCH_POD_CACHE") == "off":
        # Diagnosis / before-after only: never attach the pod index, i.e. GET every pod on
        # every tick as before the watch-fed pod cache.
        ctx.pods.attach = lambda index: None  # type: ignore[method-assign]
    registry = handlers.build_registry(
        ctx, login=lambda **_: kopf.ConnectionInfo(server=args.server),
        client_config=lambda: configuration_for(args.server))
    settings = configure(kopf.OperatorSettings(), standalone=True)
    settings.scanning.disabled = True  # kmock cannot list namespaces (see tests/operator)
    settings.posting.level = logging.WARNING

    async def run() -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGUSR1, dump)
        if profiler is not None:
            loop.add_signal_handler(signal.SIGUSR2, profiler.enable)
        ready = asyncio.Event()
        task = asyncio.create_task(kopf.operator(
            registry=registry, settings=settings, standalone=True, namespaces=[NS],
            ready_flag=ready))
        await asyncio.wait_for(ready.wait(), timeout=CHILD_READY_TIMEOUT)
        Path(args.ready).write_text("ready")
        await task

    asyncio.run(run())
    dump()
    return 0


# -- the measurement ---------------------------------------------------------------------------


async def _wait_file(path: Path, timeout: float, proc: asyncio.subprocess.Process) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not path.exists():
        if proc.returncode is not None:
            raise RuntimeError(f"operator exited early ({proc.returncode})")
        if loop.time() > deadline:
            raise TimeoutError(f"{path.name} not written within {timeout}s")
        await asyncio.sleep(0.1)  # polling another process's file, bounded


def _rss(proc: psutil.Process) -> float:
    return proc.memory_info().rss / MIB


def _all_ready(kmock: Any, n: int) -> int:
    want = f"{AGENTS_PER_LOOP}/{AGENTS_PER_LOOP}"
    return sum(1 for (res, namespace, _), stored in list(kmock.objects.items())
               if res.plural == "loopphases" and namespace == NS and not stored.deleted
               and (stored.raw.get("status") or {}).get("ready") == want)


async def measure_one(n: int, interval: float, window: float, settle: float,
                      timeout: float, root: Path) -> dict[str, Any]:
    from kmock import KubernetesEmulator, Server

    from loopphase.operator.kubeapi import KubeApi, configuration_for, custom_ref
    from loopphase.operator.kubeapi import KubeApiError as _KubeApiError

    origin = bare_repo(root)
    port = free_port()
    fleet = ShimFleet(port)
    await fleet.start()
    result: dict[str, Any] = {"loops": n, "agents": n * AGENTS_PER_LOOP}
    try:
        async with KubernetesEmulator() as kmock, Server(kmock):
            declare_resources(kmock)
            server = str(kmock.url).rstrip("/")
            kubelet = FakeKubelet(kmock, fleet)
            kubelet.start()
            counter = RequestCounter(kmock)
            counter.start()
            stats, ready_file = root / "stats.json", root / "ready"
            log_path = root / "operator.log"
            with log_path.open("wb") as log_file:
                proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "loopphase.bench.scale", "--child",
                    "--server", server, "--shim-port", str(port),
                    "--git-cache", str(root / "git-cache"), "--stats", str(stats),
                    "--ready", str(ready_file),
                    stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                )
            ps = psutil.Process(proc.pid)
            peak = 0.0
            try:
                await _wait_file(ready_file, CHILD_READY_TIMEOUT, proc)
                await asyncio.sleep(1.0)  # let the idle operator's watch streams open
                idle_rss = _rss(ps)
                result["idle_rss_mib"] = round(idle_rss, 1)
                api = KubeApi(configuration_for(server), timeout=30.0)
                t_create = time.monotonic()
                try:
                    for i in range(n):
                        with contextlib.suppress(_KubeApiError):
                            await api.create(custom_ref("loopphase.dev", "v1alpha1", NS,
                                                         "loopphases"),
                                             lp_body(i, str(origin), interval))
                finally:
                    await api.close()
                loop = asyncio.get_running_loop()
                deadline = loop.time() + timeout
                while _all_ready(kmock, n) < n:
                    if proc.returncode is not None:
                        raise RuntimeError(f"operator exited ({proc.returncode})")
                    if loop.time() > deadline:
                        raise TimeoutError(f"only {_all_ready(kmock, n)}/{n} ready after "
                                           f"{timeout}s")
                    peak = max(peak, _rss(ps))
                    await asyncio.sleep(0.5)  # sampling the child while it converges
                result["all_ready_s"] = round(time.monotonic() - t_create, 1)
                settle_end = loop.time() + settle
                while loop.time() < settle_end:
                    peak = max(peak, _rss(ps))
                    await asyncio.sleep(0.5)

                # -- the steady-state window ----------------------------------------------
                actions0, detail0 = counter.snapshot()
                counter.keep_samples = True
                fleet_calls0 = sum(fleet.calls.values())
                if os.environ.get("LOOPPHASE_BENCH_PROFILE"):
                    proc.send_signal(signal.SIGUSR2)  # the child profiles the window only
                cpu0 = ps.cpu_times()
                w0, p0 = time.time(), time.monotonic()
                samples: list[float] = []
                while time.monotonic() - p0 < window:
                    samples.append(_rss(ps))
                    await asyncio.sleep(0.5)  # RSS sampling period within the window
                cpu1 = ps.cpu_times()
                threads = ps.num_threads()
                w1, elapsed = time.time(), time.monotonic() - p0
                actions1, detail1 = counter.snapshot()
                counter.keep_samples = False
                fleet_calls1 = sum(fleet.calls.values())
                stats.unlink(missing_ok=True)
                proc.send_signal(signal.SIGUSR1)
                await _wait_file(stats, 30.0, proc)
                peak = max([peak, *samples])
            finally:
                if proc.returncode is None:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        await asyncio.wait_for(proc.wait(), timeout=CHILD_STOP_TIMEOUT)
                    except TimeoutError:
                        proc.kill()
                        await asyncio.wait_for(proc.wait(), timeout=10)
                await kubelet.close()
                await counter.close()
    finally:
        await fleet.close()

    child = json.loads(stats.read_text())
    ticks = [(s, d, ok) for s, d, ok in child["ticks"] if w0 <= s < w1]
    durations = [d for _, d, _ in ticks]
    # children: the git processes the operator runs (ls-remote/fetch) are its cost too
    cpu_s = sum(getattr(cpu1, f) - getattr(cpu0, f)
                for f in ("user", "system", "children_user", "children_system"))
    children_cpu_s = sum(getattr(cpu1, f) - getattr(cpu0, f)
                         for f in ("children_user", "children_system"))
    n_ticks = len(ticks)
    actions, detail = actions1 - actions0, detail1 - detail0
    samples_w = counter.writes_sample
    # Every verb is listed, zeros included: "no requests" shows as zeros, not as an empty dict.
    per_tick = ({k: round(actions.get(k, 0) / n_ticks, 3)
                 for k in sorted(set(COUNTED_ACTIONS) | set(actions))} if n_ticks else {})
    writes = sum(v for k, v in actions.items() if k in WRITE_ACTIONS)
    cpu_per_tick_agent = cpu_s / n_ticks / AGENTS_PER_LOOP if n_ticks else None
    steady_rss = max(samples)
    result.update({
        "window_s": round(elapsed, 1),
        "ticks": n_ticks,
        "tick_errors": sum(1 for _, _, ok in ticks if not ok),
        "ticks_per_loop_per_interval": round(n_ticks / n / (elapsed / interval), 2),
        "cpu_s": round(cpu_s, 3),
        "cpu_core_fraction": round(cpu_s / elapsed, 4),
        "cpu_s_git_children": round(children_cpu_s, 3),
        "cpu_s_user_system": [round(cpu1.user - cpu0.user, 3), round(cpu1.system - cpu0.system, 3)],
        "threads": threads,
        "cpu_ms_per_tick_per_agent": round(cpu_per_tick_agent * 1000, 3) if cpu_per_tick_agent else None,
        "steady_rss_mib": round(steady_rss, 1),
        "peak_rss_mib": round(max(peak, child["ru_maxrss_kib"] / 1024), 1),
        "rss_per_agent_mib": round((steady_rss - idle_rss) / (n * AGENTS_PER_LOOP), 3),
        "tick_s": {k: (round(v, 4) if isinstance(v, float) else v)
                   for k, v in summary(durations).items()},
        "api_requests_per_tick": per_tick,
        "api_writes_per_tick": round(writes / n_ticks, 3) if n_ticks else None,
        "api_requests_by_kind": dict(sorted(detail.items())),
        "sample_writes": samples_w,
        "shim_calls_per_tick": round((fleet_calls1 - fleet_calls0) / n_ticks, 3) if n_ticks else None,
        "shim_unknown_pod": fleet.unknown,
        "kubelet_errors": kubelet.errors[:5],
    })
    return result


def extrapolate(runs: list[dict[str, Any]], interval: float) -> dict[str, Any]:
    ok = [r for r in runs if "error" not in r and r.get("cpu_ms_per_tick_per_agent")]
    if not ok:
        return {}
    big = max(ok, key=lambda r: r["agents"])
    cpu_ms = big["cpu_ms_per_tick_per_agent"]
    core = cpu_ms / 1000 * TARGET_AGENTS / interval
    rss = big["idle_rss_mib"] + TARGET_AGENTS * big["rss_per_agent_mib"]
    return {
        "from_agents": big["agents"],
        "agents": TARGET_AGENTS,
        "interval_s": interval,
        "core_fraction": round(core, 3),
        "rss_mib": round(rss, 1),
        "target_core_fraction": TARGET_CORE,
        "target_rss_mib": TARGET_MIB,
        "cpu_within_target": core <= TARGET_CORE,
        "rss_within_target": rss <= TARGET_MIB,
        "cpu_margin": round(TARGET_CORE / core, 2) if core else None,
    }


def run(sizes: list[int], interval: float = 5.0, window: float = 30.0, settle: float = 10.0,
        timeout: float = 600.0) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix=f"loopphase-scale-{n}-") as tmp:
            try:
                runs.append(asyncio.run(measure_one(n, interval, window, settle, timeout,
                                                    Path(tmp))))
            except Exception as exc:  # noqa: BLE001 - reported per size
                log_tail = ""
                with contextlib.suppress(OSError):
                    log_tail = (Path(tmp) / "operator.log").read_text(errors="replace")[-1500:]
                runs.append({"loops": n, "agents": n * AGENTS_PER_LOOP,
                             "error": f"{type(exc).__name__}: {exc}", "operator_log": log_tail})
        print(f"  scale N={n}: {json.dumps(_brief(runs[-1]))}", file=sys.stderr, flush=True)
    return {
        "workload": {"interval_s": interval, "window_s": window, "settle_s": settle,
                     "agents_per_loop": AGENTS_PER_LOOP,
                     "panes": "builder active (spinner), adversary + orchestrator idle prompt",
                     "kmock": "in the benchmark process (not the operator's)"},
        "runs": runs,
        "extrapolation": extrapolate(runs, interval),
    }


def _brief(r: dict[str, Any]) -> dict[str, Any]:
    keys = ("agents", "cpu_ms_per_tick_per_agent", "cpu_core_fraction", "steady_rss_mib",
            "api_requests_per_tick", "tick_s", "error")
    return {k: r[k] for k in keys if k in r}


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        raise SystemExit(child_main(sys.argv[2:]))
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(2)

"""Idle shim footprint: one real ``loopphase shim --backend sim`` on loopback, idle scenario.

Started like the shim tests do (own port, token file, tmux socket); once ``/v1/health``
answers and the simulated agent is running, RSS and CPU are sampled for ``seconds``:

* shim: the ``loopphase shim`` Python process alone (the figure the < 40 MiB target is for);
* tmux: the tmux server of the shim's private socket;
* agent: the process tree under the tmux server (the sim agent; a real CLI would differ);
* total: all three.

RSS is the max over the samples; CPU% is (user+system CPU seconds consumed during the
window) / wall seconds * 100, i.e. percent of one core. Everything started is stopped and
checked gone before returning.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psutil

from loopphase.shim.client import ShimClient

IDLE_SCENARIO = """
phases:
  default:
    - say: {text: "ready"}
    - idle: {seconds: 86400}
"""
MIB = 1024 * 1024
HEALTH_TIMEOUT = 20.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tmux_server_pid(socket_name: str) -> int | None:
    try:
        out = subprocess.run(["tmux", "-L", socket_name, "display-message", "-p", "#{pid}"],
                             capture_output=True, text=True, timeout=5, check=False).stdout.strip()
    except subprocess.TimeoutExpired:
        return None
    return int(out) if out.isdigit() else None


def _cpu_seconds(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return float(t.user + t.system)


def _group(procs: list[psutil.Process]) -> tuple[int, float]:
    rss, cpu = 0, 0.0
    for p in procs:
        try:
            rss += p.memory_info().rss
            cpu += _cpu_seconds(p)
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return rss, cpu


def _name(proc: psutil.Process) -> str:
    try:
        cmd = proc.cmdline()
    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
        return "?"
    if "loopphase.sim.agent" in cmd or "sim-agent" in cmd:
        return "sim-agent"
    return Path(cmd[0]).name if cmd else proc.name()


async def _wait_ready(proc: subprocess.Popen[bytes], client: ShimClient, log_path: Path) -> None:
    deadline = time.monotonic() + HEALTH_TIMEOUT
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"shim exited early: {log_path.read_text()[-2000:]}")
        with contextlib.suppress(Exception):  # not up yet
            if await client.health() and (await client.state()).alive:
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"shim not ready after {HEALTH_TIMEOUT}s: {log_path.read_text()[-2000:]}")
        await asyncio.sleep(0.1)


def _stop(proc: subprocess.Popen[bytes], socket_name: str, pids: list[int]) -> bool:
    """Stop the shim and its tmux server; True when every pid seen is gone."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    try:
        subprocess.run(["tmux", "-L", socket_name, "kill-server"], capture_output=True, timeout=5, check=False)
    except subprocess.TimeoutExpired:
        pass
    deadline = time.monotonic() + 10
    alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [p for p in alive if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    for pid in alive:  # last resort, only processes this benchmark started
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return not alive


async def _measure(seconds: float, interval: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="loopphase-bench-shim-") as tmp:
        base = Path(tmp)
        workdir, state_dir = base / "work", base / "state"
        workdir.mkdir()
        (base / "scenario.yaml").write_text(IDLE_SCENARIO)
        (base / "kickoff.md").write_text("kickoff\n")
        token = uuid.uuid4().hex
        (base / "token").write_text(token + "\n")
        port = free_port()
        socket_name = f"lp-bench-{uuid.uuid4().hex[:10]}"
        log_path = base / "shim.log"
        argv = [sys.executable, "-m", "loopphase.cli", "shim", "--role", "builder", "--backend", "sim",
                "--workdir", str(workdir), "--state-dir", str(state_dir),
                "--scenario", str(base / "scenario.yaml"), "--kickoff-file", str(base / "kickoff.md"),
                "--phase-index", "0", "--phase-id", "default", "--host", "127.0.0.1",
                "--port", str(port), "--token-file", str(base / "token"),
                "--tmux-socket", socket_name, "--log-level", "WARNING"]
        env = {k: v for k, v in os.environ.items() if k != "LOOPPHASE_SHIM_TOKEN"}
        seen: list[int] = []
        with log_path.open("wb") as log_fh:
            proc = subprocess.Popen(argv, stdout=log_fh, stderr=subprocess.STDOUT, env=env)
        seen.append(proc.pid)
        client = ShimClient(f"http://127.0.0.1:{port}", token)
        try:
            started = time.monotonic()
            await _wait_ready(proc, client, log_path)
            ready_s = time.monotonic() - started
            await client.close()  # the benchmark's own HTTP session must not keep the shim busy
            shim = psutil.Process(proc.pid)
            tmux_pid = tmux_server_pid(socket_name)
            if tmux_pid is None:
                raise RuntimeError("tmux server of the shim not found")
            tmux = psutil.Process(tmux_pid)
            agents = tmux.children(recursive=True)
            seen += [tmux_pid, *(p.pid for p in agents)]
            groups = {"shim": [shim], "tmux": [tmux], "agent": agents}
            agent_names = sorted(_name(p) for p in agents)
            first = {k: _group(v) for k, v in groups.items()}
            peak = {k: r for k, (r, _) in first.items()}
            t0 = time.monotonic()
            samples = 1
            while time.monotonic() - t0 < seconds:
                await asyncio.sleep(interval)
                for k, v in groups.items():
                    peak[k] = max(peak[k], _group(v)[0])
                samples += 1
            wall = time.monotonic() - t0
            last = {k: _group(v) for k, v in groups.items()}
            shim_uss = shim.memory_full_info().uss
        finally:
            await client.close()
            gone = _stop(proc, socket_name, seen)
    out: dict[str, Any] = {"seconds": round(wall, 2), "samples": samples, "ready_s": round(ready_s, 2),
                           "agent_processes": agent_names, "cleaned_up": gone}
    total_rss, total_cpu = 0, 0.0
    for k in groups:
        cpu = last[k][1] - first[k][1]
        total_rss += peak[k]
        total_cpu += cpu
        out[k] = {"rss_mib": round(peak[k] / MIB, 1), "cpu_pct": round(cpu / wall * 100, 2)}
    out["total"] = {"rss_mib": round(total_rss / MIB, 1), "cpu_pct": round(total_cpu / wall * 100, 2)}
    out["shim"]["uss_mib"] = round(shim_uss / MIB, 1)
    out["target_shim_rss_mib"] = 40
    out["shim_within_target"] = out["shim"]["rss_mib"] < 40
    return out


def run(seconds: float = 10.0, interval: float = 0.5) -> dict[str, Any]:
    return asyncio.run(_measure(seconds, interval))

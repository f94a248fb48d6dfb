"""Real agent CLIs: footprint per agent, and limit-resume latency with real Claude Code.

Both run the pinned CLIs (``python3 dev.py bench`` installs them into .tools/npm) against the
scripted model endpoint, through real shims in tmux; nothing leaves the machine.

footprint: per CLI, one ``loopphase shim`` hosting the CLI after it answered its kickoff and
went idle; RSS (max over the window) and CPU% (of one core) of the shim, the tmux server and
the agent's process tree. For opencode the ``opencode serve`` process the TUI attaches to is
reported on its own (in a pod it is shared or separate, by configuration).

limit_resume: a ``loopphase run`` whose builder (real Claude Code, OAuth-style login) hits the
5-hour limit at its kickoff, with a reset on a whole minute; measured from the stated reset:
the first successful model turn (working again), the supervisor's probes and lift, how many
prompts reached the model after the reset (1 = no duplicate: the CLI's own resume and a probe
both landing would be 2), and kill-type actions on the builder inside the window (target 0).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import yaml

from loopphase.bench.footprint import MIB, _cpu_seconds, free_port, tmux_server_pid
from loopphase.demo.agents import (
    CLAUDE_QUIET,
    DUMMY_OAUTH,
    LOGIN_VARS,
    opencode_config,
    wait_listening,
)
from loopphase.modelserver.script import load_script
from loopphase.modelserver.server import ModelServer
from loopphase.shim.client import ShimClient

IDLE_TEXT = "Kickoff read; nothing to do until the next message."
KILLS = {"RestartAgent", "RecreateHost", "StopAgent"}


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _sample(procs: list[psutil.Process]) -> tuple[int, float]:
    rss, cpu = 0, 0.0
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.ZombieProcess):
            rss += p.memory_info().rss
            cpu += _cpu_seconds(p)
    return rss, cpu


async def _poll(what: str, probe: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not seen within {timeout}s")
        await asyncio.sleep(0.25)


async def _footprint_one(cli: str, seconds: float, interval: float, base: Path) -> dict[str, Any]:
    import subprocess
    import sys
    import uuid

    script = load_script(f"agents:\n  fp:\n    turns:\n      - text: {IDLE_TEXT!r}\n")
    serve: subprocess.Popen[bytes] | None = None
    with ModelServer(script) as server:
        workdir = base / cli / "work"
        workdir.mkdir(parents=True)
        subprocess.run(["git", "init", "-q", str(workdir)], check=True, timeout=30)
        token = uuid.uuid4().hex
        (base / cli / "token").write_text(token)
        (base / cli / "kickoff.md").write_text("Read the plan.")
        port = free_port()
        socket_name = f"lp-bench-{cli}-{uuid.uuid4().hex[:8]}"
        env = {k: v for k, v in os.environ.items() if k not in LOGIN_VARS}
        argv = [sys.executable, "-m", "loopphase.cli", "shim", "--role", "builder", "--backend", cli,
                "--workdir", str(workdir), "--state-dir", str(base / cli / "state"),
                "--kickoff-file", str(base / cli / "kickoff.md"), "--continuation-text", "Continue.",
                "--host", "127.0.0.1", "--port", str(port), "--token-file", str(base / cli / "token"),
                "--tmux-socket", socket_name, "--log-level", "WARNING"]
        if cli == "claude":
            env.update(CLAUDE_QUIET)
            argv += ["--env", f"ANTHROPIC_BASE_URL={server.base_url('fp')}",
                     "--env", f"CLAUDE_CODE_OAUTH_TOKEN={DUMMY_OAUTH}"]
        else:
            serve_port = free_port()
            serve_env = {**env, "OPENCODE_CONFIG_CONTENT": opencode_config(server.base_url("fp")),
                         "OPENCODE_DISABLE_AUTOUPDATE": "1",
                         **{k: str(base / cli / "serve-xdg" / k) for k in
                            ("XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME")}}
            serve = subprocess.Popen([shutil.which("opencode") or "opencode", "serve", "--hostname",
                                      "127.0.0.1", "--port", str(serve_port)], cwd=workdir, env=serve_env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
            await asyncio.to_thread(wait_listening, f"http://127.0.0.1:{serve_port}/config")
            argv += ["--opencode-server", f"http://127.0.0.1:{serve_port}",
                     "--bootstrap-text", "Read the plan."]
        log = (base / cli / "shim.log").open("wb")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        client = ShimClient(f"http://127.0.0.1:{port}", token, timeout=10)
        try:
            async def idle() -> bool:
                with contextlib.suppress(Exception):  # the shim is starting
                    return IDLE_TEXT[:30] in (await client.state(lines=60)).pane
                return False
            started = time.monotonic()
            try:
                await _poll(f"{cli} idle after its kickoff", idle, 120)
            except TimeoutError as err:
                pane = "?"
                with contextlib.suppress(Exception):  # best effort: say what the screen showed
                    pane = (await client.state(lines=30)).pane
                raise TimeoutError(f"{err}; screen: {pane[-1500:]!r}; model requests: "
                                   f"{[r.label for r in server.requests()]}") from err
            ready_s = time.monotonic() - started
            await client.close()
            tmux_pid = tmux_server_pid(socket_name)
            if tmux_pid is None:
                raise RuntimeError("the shim's tmux server is gone")
            groups = {"shim": [psutil.Process(proc.pid)], "tmux": [psutil.Process(tmux_pid)],
                      "agent": psutil.Process(tmux_pid).children(recursive=True)}
            if serve is not None:
                groups["opencode_serve"] = _tree(serve.pid)
            first = {k: _sample(v) for k, v in groups.items()}
            peak = {k: r for k, (r, _) in first.items()}
            t0 = time.monotonic()
            while time.monotonic() - t0 < seconds:
                await asyncio.sleep(interval)
                for k, v in groups.items():
                    peak[k] = max(peak[k], _sample(v)[0])
            wall = time.monotonic() - t0
            last = {k: _sample(v) for k, v in groups.items()}
        finally:
            await client.close()
            proc.terminate()
            proc.wait(timeout=30)
            log.close()
            if serve is not None:
                _stop_group(serve)
    out: dict[str, Any] = {"ready_s": round(ready_s, 1), "seconds": round(wall, 1)}
    for k in groups:
        out[k] = {"rss_mib": round(peak[k] / MIB, 1),
                  "cpu_pct": round((last[k][1] - first[k][1]) / wall * 100, 2)}
    agent_total = sum(peak[k] for k in ("shim", "tmux", "agent"))
    out["agent_pod_rss_mib"] = round(agent_total / MIB, 1)  # shim + tmux + CLI: one agent pod
    return out


def _stop_group(proc: Any) -> None:
    """SIGTERM the process group we started, SIGKILL it after 10 s."""
    import signal
    import subprocess

    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def footprint(seconds: float = 10.0, interval: float = 1.0) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="loopphase-bench-realcli-") as tmp:
        for cli in ("claude", "opencode"):
            if shutil.which(cli) is None:
                results[cli] = {"skipped": f"{cli} not on PATH (python3 dev.py bench installs it)"}
                continue
            results[cli] = asyncio.run(_footprint_one(cli, seconds, interval, Path(tmp)))
    return results


async def _limit_resume(timeout: float, base: Path) -> dict[str, Any]:
    from loopphase.demo.main import build_repo, demo_manifest
    from loopphase.runner.loop import Runner
    from loopphase.runner.specfile import load_spec

    state = base / "state"
    workdirs = {r: state / "work" / r for r in ("builder", "adversary")}
    script = {"agents": {
        "lr-builder": {"system_match": f"{workdirs['builder']}\\b", "turns": [
            {"limit": {"claim": "five_hour", "reset_in": 20, "round_up": 60}},
            {"text": "Working again after the reset."}]},
        "lr-adversary": {"system_match": f"{workdirs['adversary']}\\b",
                         "turns": [{"text": "Adversary idle."}]},
    }}
    manifest = demo_manifest(build_repo(base))
    manifest["spec"]["phases"] = manifest["spec"]["phases"][:1]
    manifest["spec"]["agents"] = {r: {"backend": "claude", "prompt": {"inline": f"You are the {r}."}}
                                  for r in ("builder", "adversary")}
    timing = manifest["spec"]["timing"]
    for key in ("limitResetSlack", "probeFallback", "stallIdle"):
        timing.pop(key, None)  # the product defaults: slack 45 s
    timing["startGrace"] = "30s"
    spec_path = base / "lp.yaml"
    spec_path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    saved = dict(os.environ)
    with ModelServer(load_script(yaml.safe_dump(script))) as server:
        try:
            for name in LOGIN_VARS:
                os.environ.pop(name, None)
            os.environ.update(CLAUDE_QUIET)
            os.environ["CLAUDE_CODE_OAUTH_TOKEN"] = DUMMY_OAUTH
            os.environ["ANTHROPIC_BASE_URL"] = server.url
            runner = Runner(load_spec(spec_path), state)

            def resumed() -> bool:
                return any(r.status == 200 and r.main for r in server.requests("lr-builder"))
            task = asyncio.create_task(runner.run(exit_on_complete=False))
            try:
                async def seen() -> bool:
                    if task.done():
                        task.result()
                    return resumed()
                await _poll("the builder working again", seen, timeout)
                await asyncio.sleep(20)  # a probe queued behind the resumed turn would show here
            finally:
                runner.request_stop()
                await asyncio.wait_for(task, 30)
                await runner.stop_everything()
            requests = server.requests("lr-builder")
        finally:
            os.environ.clear()
            os.environ.update(saved)
    limited = [r for r in requests if r.status == 429 and r.main]
    reset = float(next(iter(limited)).time) if limited else None
    actions = runner.store.read_actions()
    armed = [a for a in actions if a.get("kind") == "limit-armed" and a["role"] == "builder"]
    # the stated reset is the minute the endpoint rounded to (what the screen says)
    epoch = _stated_reset(requests)
    ok = [r for r in requests if r.status == 200 and r.main]
    after = [r for r in requests if epoch is not None and r.time >= epoch and r.main and r.human_text]
    probes = [a for a in actions if a.get("purpose") == "probe" and a["role"] == "builder"]

    def since(stamp: str) -> float:
        return round(datetime.fromisoformat(stamp).timestamp() - (epoch or 0), 2)
    return {
        "stated_reset": datetime.fromtimestamp(epoch, UTC).isoformat() if epoch else None,
        "limited_requests": len(limited),
        "first_limit_at_s_before_reset": round((epoch or 0) - reset, 1) if reset else None,
        "working_again_after_reset_s": round(ok[0].time - epoch, 2) if ok and epoch else None,
        "probes_after_reset_s": [since(a["time"]) for a in probes],
        "lifted_after_reset_s": [since(a["time"]) for a in actions
                                 if a.get("kind") == "limit-lifted" and a["role"] == "builder"],
        "windows_armed": len(armed),
        "prompts_after_reset": len(after),
        "duplicate_prompts": max(0, len(after) - 1),
        "prompt_sources": [(r.human_text or "")[:60] for r in after],
        "kills_in_window": len([a for a in actions if a["action"] in KILLS and a["role"] == "builder"
                                and a.get("rule") != "phase.complete"]),
        "limit_reset_slack_s": 45,
    }


def _stated_reset(requests: list[Any]) -> float | None:
    """The reset epoch the endpoint answered with (the unified reset header's value)."""
    for r in requests:
        if r.status == 429 and r.reset_epoch is not None:
            return float(r.reset_epoch)
    return None


def limit_resume(timeout: float = 300.0) -> dict[str, Any]:
    if shutil.which("claude") is None:
        return {"skipped": "claude not on PATH (python3 dev.py bench installs it)"}
    with tempfile.TemporaryDirectory(prefix="loopphase-bench-limit-") as tmp:
        return asyncio.run(_limit_resume(timeout, Path(tmp)))


def run(seconds: float = 10.0, interval: float = 1.0, timeout: float = 300.0) -> dict[str, Any]:
    return {"footprint": footprint(seconds, interval), "limit_resume": limit_resume(timeout)}

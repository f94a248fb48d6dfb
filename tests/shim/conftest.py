"""Fixtures: a real `loopphase shim` subprocess on 127.0.0.1 with its own port and tmux socket."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psutil
import pytest
from loopphase.shim.client import ShimClient

T = TypeVar("T")

SCENARIO = """
phases:
  flow:
    - work: {seconds: 1.5}
    - banner: {style: five_hour, reset_in: 120, lift_after: 0}
    - wait_until: {seconds: 30}
  fatal:
    - work: {seconds: 0.3}
    - fatal: {}
  quick-exit:
    - say: {text: "bye soon"}
    - exit: {code: 3}
  default:
    - wait_input: {match: "never-typed-in-tests"}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def until(
    probe: Callable[[], Awaitable[T]], ok: Callable[[T], bool], timeout: float = 10.0,
    what: str = "condition",
) -> T:
    """Poll ``probe`` until ``ok(value)``; fail with the last value after ``timeout``."""
    deadline = time.monotonic() + timeout
    value = await probe()
    while not ok(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last value: {value!r}"[:3000])
        await asyncio.sleep(0.1)
        value = await probe()
    return value


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def tmux_server_pid(socket_name: str) -> int | None:
    out = subprocess.run(
        ["tmux", "-L", socket_name, "display-message", "-p", "#{pid}"],
        capture_output=True, text=True, timeout=5, check=False,
    ).stdout.strip()
    return int(out) if out.isdigit() else None


def agent_processes(socket_name: str) -> list[psutil.Process]:
    """Simulated-agent processes under this shim's tmux server.

    A child the server has forked but not yet exec'd (the pane process a moment before it
    becomes the agent, or pipe-pane's shell) still carries the server's name ("tmux: server")
    and command line, which holds the first session's agent argv: it is not an agent, and
    counting it made "never two agents" fail now and then in CI."""
    pid = tmux_server_pid(socket_name)
    if pid is None:
        return []
    found = []
    try:
        for child in psutil.Process(pid).children(recursive=True):
            try:
                if child.name().startswith("tmux"):
                    continue
                if "loopphase.sim.agent" in " ".join(child.cmdline()):
                    found.append(child)
            except (psutil.NoSuchProcess, psutil.ZombieProcess):
                continue
    except psutil.NoSuchProcess:
        return []
    return found


@dataclass
class Shim:
    proc: subprocess.Popen[bytes]
    port: int
    token: str
    socket_name: str
    state_dir: Path
    workdir: Path
    client: ShimClient
    log_path: Path
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def input_log(self) -> Path:
        return self.state_dir / "sim-input.jsonl"

    def inputs(self, kind: str = "input") -> list[dict[str, Any]]:
        return [r for r in read_jsonl(self.input_log) if r["kind"] == kind]

    def terminate(self, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)


@pytest.fixture
def scenario_file(tmp_path: Path) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(SCENARIO)
    return path


@pytest.fixture
async def start_shim(
    tmp_path: Path, scenario_file: Path
) -> AsyncIterator[Callable[..., Awaitable[Shim]]]:
    shims: list[Shim] = []

    async def start(*extra_args: str, phase: str = "default", kickoff: str = "kickoff text",
                    continuation: str = "continuation text") -> Shim:
        n = len(shims)
        base = tmp_path / f"shim{n}"
        workdir, state_dir = base / "work", base / "state"
        workdir.mkdir(parents=True)
        (base / "kickoff.md").write_text(kickoff)
        token = uuid.uuid4().hex
        (base / "token").write_text(token + "\n")
        port = free_port()
        socket_name = f"lp-test-{uuid.uuid4().hex[:10]}"
        log_path = base / "shim.log"
        argv = [
            sys.executable, "-m", "loopphase.cli", "shim",
            "--role", "builder", "--backend", "sim",
            "--workdir", str(workdir), "--state-dir", str(state_dir),
            "--scenario", str(scenario_file),
            "--kickoff-file", str(base / "kickoff.md"),
            "--continuation-text", continuation,
            "--phase-index", "0", "--phase-id", phase,
            "--host", "127.0.0.1", "--port", str(port),
            "--token-file", str(base / "token"),
            "--tmux-socket", socket_name,
            *extra_args,
        ]
        env = {k: v for k, v in os.environ.items() if k != "LOOPPHASE_SHIM_TOKEN"}
        with log_path.open("wb") as log_fh:
            proc = subprocess.Popen(argv, stdout=log_fh, stderr=subprocess.STDOUT, env=env)
        shim = Shim(proc, port, token, socket_name, state_dir, workdir,
                    ShimClient(f"http://127.0.0.1:{port}", token), log_path)
        shims.append(shim)

        async def healthy() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"shim exited early: {log_path.read_text()}")
            return await shim.client.health()

        await until(healthy, bool, timeout=15, what="shim health")
        return shim

    yield start

    for shim in shims:
        await shim.client.close()
        try:
            shim.terminate()
        except subprocess.TimeoutExpired:
            shim.proc.kill()
            shim.proc.wait(timeout=5)
        subprocess.run(["tmux", "-L", shim.socket_name, "kill-server"],
                       capture_output=True, timeout=5, check=False)


@pytest.fixture
def git_remote(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(bare remote, clone) with one initial commit on main."""
    bare, clone = tmp_path / "remote.git", tmp_path / "clone"
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}

    def git(*args: str, cwd: Path | None = None) -> str:
        return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True,
                              text=True, timeout=30, check=True).stdout

    git("init", "-q", "--bare", "-b", "main", str(bare))
    git("clone", "-q", str(bare), str(clone))
    git("checkout", "-q", "-b", "main", cwd=clone)
    (clone / "README.md").write_text("hi\n")
    git("add", "README.md", cwd=clone)
    git("commit", "-q", "-m", "init", cwd=clone)
    git("push", "-q", "origin", "main", cwd=clone)
    yield bare, clone

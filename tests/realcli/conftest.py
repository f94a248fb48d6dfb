"""Fixtures for the real agent CLIs: the pinned binaries, one model server per module, shims.

The CLIs come from ``python3 dev.py test`` (npm, into ``.tools/npm``) or the PATH; a test is
skipped, with the reason, only when its CLI is not installed. Every agent runs through the
real shim in real tmux against the scripted endpoint (``loopphase.modelserver``).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import psutil
import pytest
from loopphase.modelserver.script import Script
from loopphase.modelserver.server import ModelServer
from loopphase.shim.client import ShimClient
from loopphase.shim.protocol import ShimState

from tests.realcli.screens import ScreenRecorder

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]
TOOLS_BIN = ROOT / ".tools" / "npm" / "node_modules" / ".bin"
PINS = ROOT / "images" / "agent" / "cli-pins.txt"

# Quiet, offline Claude Code: no telemetry, error reports, update checks or other side traffic.
CLAUDE_ENV = {
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_AUTOUPDATER": "1",
}
LOGIN_VARS = ("ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_AUTH_TOKEN",
              "ANTHROPIC_BASE_URL", "CLAUDE_CONFIG_DIR")
OAUTH_TOKEN = "sk-ant-oat01-scripted-test-token"
API_KEY = "sk-ant-api03-scripted-test-key-0123456789"


def cli_path(name: str) -> str | None:
    return shutil.which(name, path=os.pathsep.join([str(TOOLS_BIN), os.environ.get("PATH", "")]))


def pinned_version(package: str) -> str:
    for line in PINS.read_text().splitlines():
        if line.startswith(package + "@"):
            return line.rpartition("@")[2]
    raise KeyError(package)


def cli_version(path: str) -> str:
    out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30, check=False)
    return out.stdout.strip().split()[0] if out.stdout.strip() else "unknown"


def require_cli(name: str) -> str:
    path = cli_path(name)
    if path is None:
        pytest.skip(f"{name} is not installed: `python3 dev.py test` installs the pinned version "
                    f"with npm into .tools/npm (needs npm; see docs/real-clis.md)")
    return path


@pytest.fixture(scope="session")
def claude_cli() -> tuple[str, str]:
    """(path, version) of Claude Code."""
    path = require_cli("claude")
    return path, cli_version(path)


@pytest.fixture(scope="session")
def opencode_cli() -> tuple[str, str]:
    path = require_cli("opencode")
    return path, cli_version(path)


@pytest.fixture(scope="module")
def model_server() -> Iterator[ModelServer]:
    with ModelServer(Script({})) as server:
        yield server


@pytest.fixture(scope="session")
def screens(request: pytest.FixtureRequest) -> ScreenRecorder:
    return ScreenRecorder(ROOT / "tests" / "fixtures" / "screens",
                          record=bool(request.config.getoption("--record-screens")))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def until(probe: Callable[[], Awaitable[T]], ok: Callable[[T], bool], timeout: float,
                what: str) -> T:
    """Poll ``probe`` until ``ok(value)``; fail with the last value after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    value = await probe()
    while not ok(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {value!r}"[-4000:])
        await asyncio.sleep(0.25)
        value = await probe()
    return value


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (relative path -> bytes), symlinks as their target."""
    out: dict[str, bytes] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            out[rel] = b"-> " + os.readlink(path).encode()
        elif path.is_file():
            out[rel] = path.read_bytes()
        else:
            out[rel + "/"] = b""
    return out


@pytest.fixture
def user_home(tmp_path: Path) -> Path:
    """A user's own Claude Code setup: config, settings with their own hooks, a login file."""
    home = tmp_path / "user-home"
    (home / ".claude").mkdir(parents=True)
    (home / ".claude.json").write_text(json.dumps({
        "hasCompletedOnboarding": True, "theme": "light", "numStartups": 42,
        "projects": {"/home/me/project": {"hasTrustDialogAccepted": True}}}, indent=1))
    (home / ".claude" / "settings.json").write_text(json.dumps({
        "model": "opus",
        "hooks": {"Stop": [{"hooks": [{"type": "command", "command": "echo my-own-stop-hook"}]}],
                  "SessionStart": [{"hooks": [{"type": "command", "command": "echo mine"}]}]}}, indent=1))
    return home


def git(*argv: str, cwd: Path) -> str:
    return subprocess.run(["git", *argv], cwd=cwd, check=True, capture_output=True, text=True,
                          timeout=30).stdout


def init_repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git("init", "-q", "-b", "main", cwd=path)
    git("config", "user.name", "realcli-test", cwd=path)
    git("config", "user.email", "realcli@loopphase.local", cwd=path)
    (path / "README.md").write_text("scratch\n")
    git("add", "-A", cwd=path)
    git("commit", "-qm", "init", cwd=path)
    return path


@dataclass(eq=False)
class RealShim:
    proc: subprocess.Popen[bytes]
    client: ShimClient
    socket_name: str
    state_dir: Path
    workdir: Path
    log_path: Path
    agent: str

    async def state(self, lines: int = 60) -> ShimState:
        return await self.client.state(lines=lines)

    async def wait_pane(self, needle: str, timeout: float = 60.0) -> ShimState:
        async def probe() -> ShimState:
            if self.proc.poll() is not None:
                raise AssertionError(f"shim exited: {self.log_path.read_text()[-3000:]}")
            return await self.state()
        return await until(probe, lambda s: needle in s.pane, timeout, f"{needle!r} on the screen")

    def agent_cmdline(self) -> list[str]:
        """The argv of the process in the tmux pane (the agent CLI)."""
        out = subprocess.run(["tmux", "-L", self.socket_name, "display-message", "-p", "-t", "agent",
                              "#{pane_pid}"], capture_output=True, text=True, timeout=5, check=False)
        pid = out.stdout.strip()
        return psutil.Process(int(pid)).cmdline() if pid.isdigit() else []

    def hook_events(self) -> list[dict[str, Any]]:
        path = self.state_dir / "hook-events.jsonl"
        if not path.exists():
            return []
        return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


@pytest.fixture
async def claude_shim(
    tmp_path: Path, claude_cli: tuple[str, str], model_server: ModelServer, user_home: Path
) -> AsyncIterator[Callable[..., Awaitable[RealShim]]]:
    """Start ``loopphase shim --backend claude`` with the real CLI on a scripted agent."""
    shims: list[RealShim] = []

    async def start(agent: str, kickoff: str = "Read PLAN.md and start.", *,
                    login: str = "oauth", env: dict[str, str] | None = None,
                    continuation: str = "Continue where you left off.") -> RealShim:
        base = tmp_path / f"shim-{agent}"
        workdir = init_repo(base / "work")
        state_dir = base / "state"
        (base / "kickoff.md").write_text(kickoff)
        token = uuid.uuid4().hex
        (base / "token").write_text(token)
        port = free_port()
        socket_name = f"lp-realcli-{uuid.uuid4().hex[:8]}"
        agent_env = {"ANTHROPIC_BASE_URL": model_server.base_url(agent),
                     **({"CLAUDE_CODE_OAUTH_TOKEN": OAUTH_TOKEN} if login == "oauth"
                        else {"ANTHROPIC_API_KEY": API_KEY}),
                     **(env or {})}
        argv = [sys.executable, "-m", "loopphase.cli", "shim", "--role", "builder",
                "--backend", "claude", "--workdir", str(workdir), "--state-dir", str(state_dir),
                "--kickoff-file", str(base / "kickoff.md"), "--continuation-text", continuation,
                "--phase-index", "0", "--phase-id", "p1", "--host", "127.0.0.1",
                "--port", str(port), "--token-file", str(base / "token"),
                "--tmux-socket", socket_name]
        for key, value in agent_env.items():
            argv += ["--env", f"{key}={value}"]
        proc_env = {k: v for k, v in os.environ.items()
                    if k not in LOGIN_VARS and k != "LOOPPHASE_SHIM_TOKEN"}
        proc_env.update(CLAUDE_ENV)
        proc_env["HOME"] = str(user_home)
        proc_env["PATH"] = os.pathsep.join([str(TOOLS_BIN), proc_env.get("PATH", "")])
        log_path = base / "shim.log"
        with log_path.open("wb") as fh:
            proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, env=proc_env)
        shim = RealShim(proc, ShimClient(f"http://127.0.0.1:{port}", token, timeout=15.0),
                        socket_name, state_dir, workdir, log_path, agent)
        shims.append(shim)

        async def healthy() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"shim exited: {log_path.read_text()[-3000:]}")
            try:
                return await shim.client.health()
            except Exception:  # noqa: BLE001 - not listening yet
                return False
        await until(healthy, bool, 20, "shim health")
        return shim

    yield start

    for shim in shims:
        await shim.client.close()
        if shim.proc.poll() is None:
            shim.proc.send_signal(signal.SIGTERM)
            try:
                shim.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                shim.proc.kill()
                shim.proc.wait(timeout=5)
        subprocess.run(["tmux", "-L", shim.socket_name, "kill-server"], capture_output=True,
                       timeout=5, check=False)

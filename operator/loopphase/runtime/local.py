"""The local runtime: each role's agent host is a ``loopphase shim`` process on loopback.

Shims run in their own session (``start_new_session``), so stopping ``loopphase run`` leaves
them running; the next run adopts them from their record (pid, port, token) in the state
directory. Each role works in its own clone of the repository, like the reference launcher's
separate builder and adversary checkouts.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import signal
import socket
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from loopphase.api.spec import LoopPhaseSpec, Role
from loopphase.core.observations import AgentObservation
from loopphase.git.runner import GitRunner
from loopphase.runtime.base import HostResult, LaunchPlan
from loopphase.shim.client import ShimClient, ShimError, to_observation

log = logging.getLogger("loopphase.local")

GIT_TIMEOUT = 120.0
SHIM_READY_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0
CALL_TIMEOUT = 8.0


@dataclass(frozen=True)
class ShimRecord:
    pid: int
    port: int
    token: str
    phase_index: int
    create_time: float


class LocalRuntime:
    def __init__(self, spec: LoopPhaseSpec, state_dir: Path, spec_dir: Path) -> None:
        self.spec = spec
        self.state_dir = state_dir
        self.spec_dir = spec_dir
        for sub in ("shims", "work", "logs", "kickoff", "scenarios", "shim-state"):
            (state_dir / sub).mkdir(parents=True, exist_ok=True)

    # -- records ---------------------------------------------------------------------------

    def _record_path(self, role: Role) -> Path:
        return self.state_dir / "shims" / f"{role}.json"

    def record(self, role: Role) -> ShimRecord | None:
        path = self._record_path(role)
        if not path.exists():
            return None
        try:
            record = ShimRecord(**json.loads(path.read_text()))
        except (ValueError, TypeError) as err:
            log.warning("ignoring unreadable shim record %s: %s", path, err)
            return None
        return record if _same_process(record) else None

    def _write_record(self, role: Role, record: ShimRecord) -> None:
        path = self._record_path(role)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(record)))
        tmp.replace(path)

    def _client(self, record: ShimRecord) -> ShimClient:
        return ShimClient(f"http://127.0.0.1:{record.port}", record.token, timeout=CALL_TIMEOUT)

    # -- AgentRuntime ------------------------------------------------------------------------

    async def observe(self, role: Role) -> AgentObservation:
        record = self.record(role)
        if record is None:
            return AgentObservation(role=role, present=False)
        client = self._client(record)
        try:
            state = await client.state(lines=60)
            obs = to_observation(role, state, None)
        except ShimError as err:
            obs = to_observation(role, None, str(err))
            obs = AgentObservation(**{**obs.__dict__, "phase_index": record.phase_index})
        finally:
            await client.close()
        return obs

    async def start(self, plan: LaunchPlan) -> HostResult:
        if self.record(plan.role) is not None:
            return HostResult(True, "host already running: adopted")
        workdir = await asyncio.to_thread(self._ensure_clone, plan.role)
        return await self._spawn(plan, workdir)

    async def restart(self, plan: LaunchPlan) -> HostResult:
        record = self.record(plan.role)
        if record is None:
            return HostResult(False, "no host to restart in")
        client = self._client(record)
        try:
            await client.restart(plan.mode, kickoff=plan.kickoff, continuation=plan.continuation,
                                 phase_index=plan.phase_index, phase_id=plan.phase_id)
        except ShimError as err:
            return HostResult(False, str(err))
        finally:
            await client.close()
        return HostResult(True, f"restarted {plan.mode}")

    async def recreate(self, plan: LaunchPlan) -> HostResult:
        stopped = await self.stop(plan.role)
        if not stopped.ok:
            return stopped
        return await self.start(plan)

    async def stop(self, role: Role) -> HostResult:
        record = self.record(role)
        if record is None:
            self._record_path(role).unlink(missing_ok=True)
            return HostResult(True, "no host")
        gone = await asyncio.to_thread(_terminate, record.pid)
        if not gone:
            return HostResult(False, f"shim pid {record.pid} survived SIGTERM and SIGKILL")
        self._record_path(role).unlink(missing_ok=True)
        return HostResult(True, f"shim pid {record.pid} stopped and verified gone")

    async def send(self, role: Role, text: str) -> HostResult:
        record = self.record(role)
        if record is None:
            return HostResult(False, "no host")
        client = self._client(record)
        try:
            result = await client.send(text)
        except ShimError as err:
            return HostResult(False, str(err))
        finally:
            await client.close()
        return HostResult(result.accepted, result.detail)

    async def stop_all(self) -> None:
        for role in ("builder", "adversary", "orchestrator"):
            await self.stop(role)  # type: ignore[arg-type]

    # -- helpers -----------------------------------------------------------------------------

    def workdir(self, role: Role) -> Path:
        return self.state_dir / "work" / role

    def _ensure_clone(self, role: Role) -> Path:
        workdir = self.workdir(role)
        if (workdir / ".git").exists():
            return workdir
        repo = self.spec.repo
        # GitRunner: a timeout kills git's whole process group (git-remote-https and friends
        # outlived a plain subprocess timeout), and its error text is redacted.
        git = GitRunner(repo.url, timeout=GIT_TIMEOUT)
        git.check(["clone", "--quiet", "--branch", repo.branch, "--", repo.url, str(workdir)])
        for key, value in (("user.name", f"loopphase-{role}"), ("user.email", f"{role}@loopphase.local")):
            git.check(["-C", str(workdir), "config", key, value])
        return workdir

    def _scenario_path(self, role: Role) -> Path | None:
        raw = self.spec.agent(role).sim_scenario
        if raw is None:
            return None
        candidate = self.spec_dir / raw if "\n" not in raw else None
        if candidate is not None and candidate.is_file():
            return candidate
        path = self.state_dir / "scenarios" / f"{role}.yaml"
        path.write_text(raw)
        return path

    async def _spawn(self, plan: LaunchPlan, workdir: Path) -> HostResult:
        role = plan.role
        agent = self.spec.agent(role)
        kickoff = self.state_dir / "kickoff" / f"{role}-{plan.phase_id}.txt"
        kickoff.write_text(plan.kickoff)
        token = secrets.token_urlsafe(24)
        token_file = self.state_dir / "shims" / f"{role}.token"
        token_file.write_text(token)
        token_file.chmod(0o600)
        port = _free_port()
        phase = self.spec.phases[plan.phase_index]
        argv = [
            sys.executable, "-m", "loopphase.cli", "shim",
            "--role", role, "--backend", agent.backend, "--workdir", str(workdir),
            "--kickoff-file", str(kickoff), "--continuation-text", plan.continuation,
            "--mode", plan.mode, "--phase-index", str(plan.phase_index), "--phase-id", plan.phase_id,
            "--host", "127.0.0.1", "--port", str(port), "--token-file", str(token_file),
            "--state-dir", str(self.state_dir / "shim-state" / role),
            "--env", f"LOOPPHASE_PHASE={plan.phase_id}", "--env", f"LOOPPHASE_ROLE={role}",
            "--env", f"LOOPPHASE_STATUS_FILE={phase.status_file}",
            "--env", f"LOOPPHASE_STATE_DIR={self.spec.repo.state_dir}",
            "--env", f"LOOPPHASE_SIM_INPUT_LOG={self.state_dir / 'logs' / f'{role}.inputs.jsonl'}",
        ]
        if plan.model:
            argv += ["--model", plan.model]
        scenario = self._scenario_path(role)
        if scenario is not None:
            argv += ["--scenario", str(scenario)]
        if agent.opencode_server:
            argv += ["--opencode-server", agent.opencode_server]
        log_file = (self.state_dir / "logs" / f"{role}.shim.log").open("ab")
        try:
            proc = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True, cwd=workdir)
        finally:
            log_file.close()
        record = ShimRecord(pid=proc.pid, port=port, token=token, phase_index=plan.phase_index,
                            create_time=psutil.Process(proc.pid).create_time())
        self._write_record(role, record)
        client = self._client(record)
        try:
            deadline = asyncio.get_running_loop().time() + SHIM_READY_TIMEOUT
            while asyncio.get_running_loop().time() < deadline:
                if proc.poll() is not None:
                    return HostResult(False, f"shim exited with {proc.returncode}; see logs/{role}.shim.log")
                try:
                    if await client.health():
                        return HostResult(True, f"shim pid {proc.pid} on port {port}")
                except ShimError as err:
                    log.debug("shim %s not ready yet: %s", role, err)
                await asyncio.sleep(0.1)  # polling a starting process, bounded by the deadline
        finally:
            await client.close()
        return HostResult(False, f"shim did not become healthy within {SHIM_READY_TIMEOUT}s")


def _same_process(record: ShimRecord) -> bool:
    """The pid is alive and is the process we started (not a recycled pid)."""
    try:
        proc = psutil.Process(record.pid)
        return abs(proc.create_time() - record.create_time) < 1.0 and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _terminate(pid: int) -> bool:
    """SIGTERM, wait, SIGKILL if needed; True once the process is verifiably gone."""
    try:
        proc = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return True
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=STOP_TIMEOUT)
        return True
    except psutil.NoSuchProcess:
        return True
    except psutil.TimeoutExpired:
        log.warning("shim pid %s ignored SIGTERM; killing", pid)
    try:
        proc.kill()
        proc.wait(timeout=5)
    except psutil.NoSuchProcess:
        return True
    except psutil.TimeoutExpired:
        return False
    return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])

"""The local runtime: each role's agent host is a ``loopphase shim`` process on loopback.

Shims run in their own session (``start_new_session``), so stopping ``loopphase run`` leaves
them running; the next run adopts them from their record (pid, port, token) in the state
directory. Each role works in its own clone of the repository, like the reference launcher's
separate builder and adversary checkouts.

Records can be lost (a deleted state directory, a crash between spawn and write), so every
shim, and through it its tmux server and agent, carries a marker in its process environment,
``LOOPPHASE_RUN_ID=<run id>/<role>`` (the run id is a hash of the state directory's path).
A role whose marker is found on a live process is never started again: its record is rebuilt
from the shim's command line when possible, otherwise the role cannot start until
``loopphase run --stop`` (which stops every marked process) is run. Before a start the role's
configuration is checked on this machine (``loopphase.runner.preflight``); a role that cannot
start is reported as ``cannot_start`` (the core makes it NeedsAttention), never retried blindly.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from loopphase.api.spec import LoopPhaseSpec, Role
from loopphase.core.observations import AgentObservation
from loopphase.git.errors import GitRemoteError
from loopphase.git.probe import is_transient
from loopphase.git.runner import GitRunner
from loopphase.runner.preflight import repo_problem, role_problem, scenario_file
from loopphase.runner.secure import private_dir, write_private
from loopphase.runtime.base import HostResult, LaunchPlan
from loopphase.shim.client import ShimClient, ShimError, to_observation

log = logging.getLogger("loopphase.local")

GIT_TIMEOUT = 120.0
SHIM_READY_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0
CALL_TIMEOUT = 8.0
MARKER = "LOOPPHASE_RUN_ID"
REPO_RECHECK = 15.0  # seconds between ls-remotes while the repository refuses every start


def run_id(state_dir: Path) -> str:
    """A stable id for the run kept in ``state_dir`` (same path, same id, even if recreated)."""
    return hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:16]


def marked_processes(rid: str, role: str | None = None) -> list[psutil.Process]:
    """Live processes whose environment carries this run's marker (for ``role``, or any role).

    Only processes of this user are readable; others are skipped, as are zombies."""
    found = []
    for proc in psutil.process_iter():
        try:
            value = proc.environ().get(MARKER)
            if value is None or proc.status() == psutil.STATUS_ZOMBIE:
                continue
        except psutil.Error:
            continue  # gone, another user's, or a kernel thread: not ours
        marked_rid, _, marked_role = value.partition("/")
        if marked_rid == rid and (role is None or marked_role == role):
            found.append(proc)
    return found


def _is_shim(proc: psutil.Process) -> bool:
    try:
        cmd = proc.cmdline()
    except psutil.Error:
        return False
    return "loopphase.cli" in cmd and "shim" in cmd


def _option(cmd: list[str], name: str) -> str | None:
    return cmd[cmd.index(name) + 1] if name in cmd and cmd.index(name) + 1 < len(cmd) else None


@dataclass(frozen=True)
class ShimRecord:
    pid: int
    port: int
    token: str
    phase_index: int
    create_time: float


def withheld_from_agents(spec: LoopPhaseSpec) -> frozenset[str]:
    """Environment variables of `loopphase run` its agents must not see: the notify webhooks'
    ``urlEnv`` names (a Slack URL carries its token; an agent could read it with ``env``)."""
    if spec.notify is None:
        return frozenset()
    return frozenset(hook.url_env for hook in spec.notify.webhooks if hook.url_env)


class LocalRuntime:
    def __init__(self, spec: LoopPhaseSpec, state_dir: Path, spec_dir: Path, *, create: bool = True) -> None:
        self.spec = spec
        self.state_dir = state_dir
        self.spec_dir = spec_dir
        self.run_id = run_id(state_dir)
        # role -> (agent settings it was refused with, the shim's whole reason)
        self._refused: dict[Role, tuple[str, str]] = {}
        # (the whole reason every clone fails, monotonic time of the next ls-remote to re-check)
        self._repo_refused: tuple[str, float] | None = None
        if create:
            private_dir(state_dir)
            for sub in ("shims", "work", "logs", "kickoff", "scenarios", "shim-state"):
                private_dir(state_dir / sub)

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
        return record if same_process(record) else None

    def _write_record(self, role: Role, record: ShimRecord) -> None:
        write_private(self._record_path(role), json.dumps(asdict(record)))

    def _recover(self, role: Role) -> tuple[ShimRecord | None, str | None]:
        """Without a record: a live shim of this run and role, re-adopted from its command line
        (port, token file), or the reason it cannot be (the role must not start again)."""
        procs = marked_processes(self.run_id, role)
        if not procs:
            return None, None
        shims = [p for p in procs if _is_shim(p)]
        for proc in shims:
            try:
                cmd = proc.cmdline()
                port, token_file = _option(cmd, "--port"), _option(cmd, "--token-file")
                token = Path(token_file).read_text(encoding="utf-8").strip() if token_file else ""
                record = ShimRecord(pid=proc.pid, port=int(port or 0), token=token,
                                    phase_index=int(_option(cmd, "--phase-index") or 0),
                                    create_time=proc.create_time())
            except (psutil.Error, OSError, ValueError) as err:
                log.warning("cannot re-adopt %s shim pid %s: %s", role, proc.pid, err)
                continue
            if record.port and record.token:
                self._write_record(role, record)
                log.warning("%s: re-adopted shim pid %s from its marker (its record was lost)", role, proc.pid)
                return record, None
        pids = ", ".join(str(p.pid) for p in procs)
        return None, (
            f"an agent of this run's {role} is still running (pids {pids}, marked {MARKER}="
            f"{self.run_id}/{role}) but cannot be adopted (its record and token are gone); "
            "a second one would share its working copy, so nothing is started: stop it with "
            "`loopphase run SPEC --stop`, then run again"
        )

    def settings_key(self, role: Role) -> str:
        """The role's agent settings as started (a changed spec gets a fresh try)."""
        return json.dumps(self.spec.agent(role).to_wire(), sort_keys=True)

    def _client(self, record: ShimRecord) -> ShimClient:
        return ShimClient(f"http://127.0.0.1:{record.port}", record.token, timeout=CALL_TIMEOUT)

    # -- AgentRuntime ------------------------------------------------------------------------

    def cannot_start(self, role: Role) -> str | None:
        """Why ``role`` cannot start on this machine now, or None (checked before any start)."""
        problem = role_problem(self.spec, role, self.spec_dir)
        if problem is not None:
            return problem
        if self._repo_refused is not None:
            return self._repo_refused[0]
        refused = self._refused.get(role)
        if refused is not None and refused[0] == self.settings_key(role):
            return refused[1]
        self._refused.pop(role, None)
        return None

    async def _recheck_repo(self) -> None:
        """While a lasting clone failure refuses every start: ask the remote again every
        ``REPO_RECHECK`` seconds (someone may create the repository or push the branch)."""
        if self._repo_refused is None or time.monotonic() < self._repo_refused[1]:
            return
        problem = await asyncio.to_thread(repo_problem, self.spec)
        if problem is None or not problem.lasting:
            log.info("the repository can be cloned again (%s)", problem or "it answers")
            self._repo_refused = None
        else:
            self._repo_refused = (str(problem), time.monotonic() + REPO_RECHECK)

    async def _clone_failed(self, role: Role, err: GitRemoteError) -> HostResult:
        """A failed clone: a lasting cause (no repository, access refused, no branch) refuses
        every start until it is fixed (NeedsAttention(CannotStart) with the field to fix);
        network trouble is an ordinary failed start (retried with backoff)."""
        text = str(err)
        if not is_transient(text):
            problem = await asyncio.to_thread(repo_problem, self.spec)
            if problem is not None and problem.lasting:
                self._repo_refused = (str(problem), time.monotonic() + REPO_RECHECK)
                log.warning("%s cannot start: %s", role, problem)
                return HostResult(False, str(problem))
        # The error already reads "git clone failed (exit N): ..." (GitRunner.describe_failure).
        return HostResult(False, text if text.startswith("git clone") else f"git clone failed: {text}")

    async def observe(self, role: Role) -> AgentObservation:
        await self._recheck_repo()
        record = self.record(role)
        orphan = None
        if record is None:
            record, orphan = await asyncio.to_thread(self._recover, role)
        cannot = orphan or self.cannot_start(role)
        if record is None:
            return AgentObservation(role=role, present=orphan is not None, cannot_start=cannot)
        client = self._client(record)
        try:
            state = await client.state(lines=60)
            obs = to_observation(role, state, None)
        except ShimError as err:
            obs = to_observation(role, None, str(err))
            obs = AgentObservation(**{**obs.__dict__, "phase_index": record.phase_index})
        finally:
            await client.close()
        if obs.cannot_start is not None:
            # The shim refused the start with a configuration error: it cannot run this
            # configuration, so it goes; the role stays NeedsAttention until the spec changes.
            self._refused[role] = (self.settings_key(role), f"the shim refused to start the agent: {obs.cannot_start}")
            await self.stop(role)
            return AgentObservation(role=role, present=False, cannot_start=self._refused[role][1])
        if cannot is not None and not obs.alive:
            # A running agent keeps running; the problem matters for its next start.
            return AgentObservation(**{**obs.__dict__, "cannot_start": cannot})
        return obs

    async def start(self, plan: LaunchPlan) -> HostResult:
        if self.record(plan.role) is not None:
            return HostResult(True, "host already running: adopted")
        record, orphan = await asyncio.to_thread(self._recover, plan.role)
        if record is not None:
            return HostResult(True, f"host already running: re-adopted shim pid {record.pid} from its marker")
        if orphan is not None:
            return HostResult(False, orphan)
        problem = self.cannot_start(plan.role)
        if problem is not None:
            return HostResult(False, problem)
        try:
            workdir = await asyncio.to_thread(self._ensure_clone, plan.role)
        except GitRemoteError as err:
            return await self._clone_failed(plan.role, err)
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
        """Stop the role's shim (it stops its agent and tmux), then any process still carrying
        the role's marker (a shim whose record was lost, an agent whose shim was killed)."""
        record = self.record(role)
        stopped: list[int] = []
        if record is not None:
            if not await asyncio.to_thread(_terminate, record.pid):
                return HostResult(False, f"shim pid {record.pid} survived SIGTERM and SIGKILL")
            stopped.append(record.pid)
        leftovers = await asyncio.to_thread(marked_processes, self.run_id, role)
        # Shims first: each takes its tmux server and agent down with it.
        for proc in sorted(leftovers, key=lambda p: not _is_shim(p)):
            if not await asyncio.to_thread(_terminate, proc.pid):
                return HostResult(False, f"{role} process {proc.pid} survived SIGTERM and SIGKILL")
            stopped.append(proc.pid)
        self._record_path(role).unlink(missing_ok=True)
        if not stopped:
            return HostResult(True, "no host")
        return HostResult(True, f"pids {', '.join(map(str, stopped))} stopped and verified gone")

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

    async def stop_all(self) -> list[str]:
        """Stop every role's host, found by record and by marker; one line per role stopped."""
        lines = []
        for role in ("builder", "adversary", "orchestrator"):
            result = await self.stop(role)  # type: ignore[arg-type]
            if result.detail != "no host" or not result.ok:
                lines.append(f"{role}: {result.detail}")
        return lines

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

    def _agent_environment(self) -> dict[str, str]:
        """This process's environment minus what agents must not see (``withheld_from_agents``)."""
        withheld = withheld_from_agents(self.spec)
        return {name: value for name, value in os.environ.items() if name not in withheld}

    def _scenario_path(self, role: Role) -> Path | None:
        raw = self.spec.agent(role).sim_scenario
        if raw is None:
            return None
        path = scenario_file(self.spec_dir, raw)
        if path is not None:
            return path  # checked to exist by cannot_start before every start
        path = self.state_dir / "scenarios" / f"{role}.yaml"
        write_private(path, raw)
        return path

    async def _spawn(self, plan: LaunchPlan, workdir: Path) -> HostResult:
        role = plan.role
        agent = self.spec.agent(role)
        kickoff = self.state_dir / "kickoff" / f"{role}-{plan.phase_id}.txt"
        write_private(kickoff, plan.kickoff)
        token = secrets.token_urlsafe(24)
        token_file = self.state_dir / "shims" / f"{role}.token"
        write_private(token_file, token)
        marker = f"{self.run_id}/{role}"
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
            "--env", f"{MARKER}={marker}",
        ]
        if plan.model:
            argv += ["--model", plan.model]
        scenario = self._scenario_path(role)
        if scenario is not None:
            argv += ["--scenario", str(scenario)]
        if agent.opencode_server:
            argv += ["--opencode-server", agent.opencode_server]
        log_fd = os.open(self.state_dir / "logs" / f"{role}.shim.log",
                         os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            # The marker in the shim's own environment reaches its tmux server and, through
            # --env, the agent: the role is found by it even when the record is lost.
            proc = subprocess.Popen(argv, stdout=log_fd, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True, cwd=workdir,
                                    env={**self._agent_environment(), MARKER: marker})
        finally:
            os.close(log_fd)
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


def same_process(record: ShimRecord) -> bool:
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

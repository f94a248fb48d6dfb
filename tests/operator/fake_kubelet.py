"""A fake kubelet for the kmock emulator: runs a REAL ``loopphase shim`` per agent pod.

It polls the emulator's stored pods. For every new agent pod (a new incarnation: the kubelet
stamps ``metadata.uid`` on first sight, as the API server would on create, because kmock
assigns none) it

- clones the repo from the init container's args into the pod's "PVC" directory (one directory
  per claim name, kept across pods, so warm restarts and the sim's progress file survive like
  they do on a PersistentVolume);
- writes the prompts ConfigMap's keys and the token Secret into files (the volume mounts);
- starts ``python -m loopphase.cli shim`` with the pod's own argv, paths rewritten to those
  files, bound to its own loopback address 127.0.0.N on the pod's (shared) shim port;
- waits for the shim's health endpoint, then sets ``status.podIP = 127.0.0.N`` and phase
  Running (a shim that exits makes the pod Failed, like restartPolicy Never).

When the pod object disappears (or is replaced by a new incarnation) the shim gets SIGTERM and
the kubelet verifies that the process and its tmux server are gone. Anything that had to be
forced (SIGKILL, a leftover tmux server) is recorded in ``errors`` so that tests fail on it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import signal
import socket
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

SHIM_READY_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0
POLL = 0.05
PROMPTS_MOUNT = "/etc/loopphase/prompts"


def loopback_usable(ip: str = "127.0.0.2") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((ip, 0))
        except OSError:
            return False
    return True


def free_port(ips: tuple[str, ...] = ("127.0.0.1", "127.0.0.2", "127.0.0.3")) -> int:
    """A port that is free on the first loopback addresses (all shims share it)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        ok = True
        for ip in ips[1:]:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                try:
                    probe.bind((ip, port))
                except OSError:
                    ok = False
        if ok:
            return port
    raise RuntimeError("no free port shared by the loopback addresses")


def _tmux_alive(socket_name: str) -> bool:
    result = subprocess.run(["tmux", "-L", socket_name, "list-sessions"], capture_output=True,
                            timeout=10, check=False)
    return result.returncode == 0


@dataclass
class PodShim:
    namespace: str
    name: str
    uid: str
    ip: str
    role: str
    proc: subprocess.Popen[bytes]
    tmux_socket: str
    log_path: Path
    args: list[str] = field(default_factory=list)
    failed: bool = False


class FakeKubelet:
    def __init__(self, kmock: Any, root: Path, namespace: str = "team-a") -> None:
        self.kmock = kmock
        self.root = root
        self.namespace = namespace
        self.running: dict[str, PodShim] = {}
        self.started: list[PodShim] = []  # every shim ever started, in order
        self.stopped: list[PodShim] = []  # every shim verified gone, in order
        self.errors: list[str] = []
        self._next_ip = 2
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    async def _patch(self, name: str, changes: dict[str, Any]) -> None:
        """Write the pod through the API (a merge PATCH), as a kubelet does: only API writes
        reach kmock's watch streams, and the operator reads pods from a watch-fed index."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        url = f"{str(self.kmock.url).rstrip('/')}/api/v1/namespaces/{self.namespace}/pods/{name}"
        async with self._session.patch(
            url, json=changes, headers={"Content-Type": "application/merge-patch+json"}
        ) as resp:
            if resp.status >= 400:
                raise RuntimeError(f"PATCH pod {name}: HTTP {resp.status}: {await resp.text()}")

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop())

    async def close(self) -> None:
        """Stop polling, stop every shim and verify each one is gone."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for name in list(self.running):
            await self._stop(self.running.pop(name))
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _loop(self) -> None:
        while True:
            try:
                await self.sync()
            except asyncio.CancelledError:
                raise
            except Exception as err:  # noqa: BLE001 - recorded, the test fails on it
                self.errors.append(f"kubelet sync failed: {err!r}")
            await asyncio.sleep(POLL)  # the kubelet's own poll interval, not a synchronisation

    # -- reconcile pods ---------------------------------------------------------------------

    def _pods(self) -> dict[str, Any]:
        pods: dict[str, Any] = {}
        for (resource, namespace, name), stored in list(self.kmock.objects.items()):
            if resource.plural == "pods" and namespace == self.namespace and not stored.deleted:
                pods[name] = stored
        return pods

    async def sync(self) -> None:
        pods = self._pods()
        # Gone (or replaced by a new incarnation): stop first, before any new shim starts.
        for name, shim in list(self.running.items()):
            stored = pods.get(name)
            if stored is None or (stored.get("metadata") or {}).get("uid") != shim.uid:
                del self.running[name]
                await self._stop(shim)
        for name, stored in pods.items():
            shim = self.running.get(name)
            if shim is None:
                await self._start(name, stored)
            elif not shim.failed and shim.proc.poll() is not None:
                shim.failed = True
                await self._patch(name, {"status": {
                    "phase": "Failed", "reason": "Error",
                    "message": f"shim exited {shim.proc.returncode}"}})

    async def _start(self, name: str, stored: Any) -> None:
        pod = dict(stored.raw)
        meta = pod.get("metadata") or {}
        uid = meta.get("uid") or f"pod-{uuid.uuid4().hex[:12]}"
        if not meta.get("uid"):
            await self._patch(name, {"metadata": {"uid": uid}})
        spec = pod["spec"]
        container = spec["containers"][0]
        init = spec["initContainers"][0]
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        ip = f"127.0.0.{self._next_ip}"
        self._next_ip += 1
        incarnation = self.root / "pods" / f"{name}-{uid}"
        claim = volumes["work"]["persistentVolumeClaim"]["claimName"]
        pvc = self.root / "pvc" / claim
        url, branch, role = init["args"][:3]
        repo = pvc / "repo"
        if not (repo / ".git").exists():
            pvc.mkdir(parents=True, exist_ok=True)
            await asyncio.to_thread(_clone, url, branch, repo, role)
        (pvc / "home").mkdir(parents=True, exist_ok=True)

        prompts_dir = incarnation / "prompts"
        prompts_dir.mkdir(parents=True, exist_ok=True)
        cm_name = volumes["prompts"]["configMap"]["name"]
        cm = self.kmock.objects["v1/configmaps", self.namespace, cm_name]
        for key, value in (cm.get("data") or {}).items():
            (prompts_dir / key).write_text(value)
        args = _rewrite(list(container["args"]), {
            "/work/repo": str(repo), "/work/.loopphase": str(pvc / ".loopphase"),
            "/work": str(pvc), PROMPTS_MOUNT: str(prompts_dir),
        })
        socket_name = f"lpk-{uuid.uuid4().hex[:10]}"
        args += ["--host", ip, "--tmux-socket", socket_name,
                 "--env", f"LOOPPHASE_SIM_INPUT_LOG={incarnation / 'inputs.jsonl'}"]
        env = {k: v for k, v in os.environ.items() if k not in {"TMUX", "TMUX_PANE"}}
        for item in container.get("env", []):
            if "value" in item:
                env[item["name"]] = item["value"]
            elif "secretKeyRef" in item.get("valueFrom", {}):
                # As the kubelet does: the Secret's key becomes the variable's value.
                ref = item["valueFrom"]["secretKeyRef"]
                secret = self.kmock.objects["v1/secrets", self.namespace, ref["name"]]
                env[item["name"]] = base64.b64decode(secret["data"][ref["key"]]).decode()
        env["HOME"] = str(pvc / "home")
        log_path = incarnation / "shim.log"
        with log_path.open("ab") as log_file:
            proc = subprocess.Popen(
                [sys.executable, "-m", "loopphase.cli", *args], stdout=log_file,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=str(pvc),
                start_new_session=True,
            )
        shim = PodShim(self.namespace, name, uid, ip, role, proc, socket_name, log_path, args)
        self.running[name] = shim
        self.started.append(shim)
        port = int(args[args.index("--port") + 1])
        if await self._wait_healthy(shim, port):
            await self._patch(name, {"status": {
                "phase": "Running", "podIP": ip,
                "containerStatuses": [{"name": "agent", "ready": True, "restartCount": 0}]}})
        else:
            shim.failed = True
            self.errors.append(f"shim for {name} never became healthy: {self.log(shim)[-2000:]}")
            await self._patch(name, {"status": {"phase": "Failed", "reason": "Error"}})

    async def _wait_healthy(self, shim: PodShim, port: int) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SHIM_READY_TIMEOUT
        timeout = aiohttp.ClientTimeout(total=2)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while loop.time() < deadline:
                if shim.proc.poll() is not None:
                    return False
                try:
                    async with session.get(f"http://{shim.ip}:{port}/v1/health") as resp:
                        if resp.status == 200:
                            return True
                except (aiohttp.ClientError, OSError, TimeoutError):
                    pass
                await asyncio.sleep(POLL)  # polling a starting process, bounded by the deadline
        return False

    async def _stop(self, shim: PodShim) -> None:
        """SIGTERM, wait for the exit, then verify the process and its tmux server are gone."""
        if shim.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                shim.proc.send_signal(signal.SIGTERM)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + STOP_TIMEOUT
            while shim.proc.poll() is None and loop.time() < deadline:
                await asyncio.sleep(POLL)
            if shim.proc.poll() is None:
                self.errors.append(f"shim {shim.name} ({shim.ip}) ignored SIGTERM; killed")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(shim.proc.pid, signal.SIGKILL)
                await asyncio.to_thread(shim.proc.wait, 10)
        if await asyncio.to_thread(_tmux_alive, shim.tmux_socket):
            self.errors.append(f"tmux server {shim.tmux_socket} of {shim.name} outlived its shim")
            subprocess.run(["tmux", "-L", shim.tmux_socket, "kill-server"], capture_output=True,
                           timeout=10, check=False)
        # Whatever else is left in the shim's session (the agent) must be gone too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(shim.proc.pid, 0)
            self.errors.append(f"processes of {shim.name}'s session outlived its shim")
            os.killpg(shim.proc.pid, signal.SIGKILL)
        self.stopped.append(shim)

    # -- helpers ----------------------------------------------------------------------------

    def shim(self, name: str) -> PodShim | None:
        return self.running.get(name)

    @staticmethod
    def log(shim: PodShim) -> str:
        try:
            return shim.log_path.read_text(errors="replace")
        except OSError:
            return ""


def _rewrite(args: list[str], mapping: dict[str, str]) -> list[str]:
    """Rewrite the pod's in-container paths (longest prefix first) to the host's."""
    prefixes = sorted(mapping, key=len, reverse=True)
    out = []
    for arg in args:
        for prefix in prefixes:
            if arg == prefix or arg.startswith(prefix + "/"):
                arg = mapping[prefix] + arg[len(prefix):]
                break
        out.append(arg)
    return out


def _clone(url: str, branch: str, dest: Path, role: str) -> None:
    run = {"check": True, "capture_output": True, "timeout": 60}
    subprocess.run(["git", "clone", "-q", "--branch", branch, "--", url, str(dest)], **run)
    subprocess.run(["git", "-C", str(dest), "config", "user.name", f"loopphase-{role}"], **run)
    subprocess.run(["git", "-C", str(dest), "config", "user.email", f"{role}@loopphase.invalid"],
                   **run)

"""The agent cannot read its shim's token (hardening fault 7): in a pod the token arrives in
the shim's environment (from the role's own Secret), the shim drops it before it starts the
agent, and makes itself non-dumpable so /proc/<shim>/environ is closed to the agent's uid."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import uuid
from pathlib import Path

import psutil
import pytest
from loopphase.shim.client import ShimClient

from tests.shim.conftest import free_port, until

pytestmark = pytest.mark.timeout(90)


async def test_agent_never_inherits_the_token(tmp_path: Path, scenario_file: Path) -> None:
    token = secrets.token_urlsafe(32)
    work, state = tmp_path / "work", tmp_path / "state"
    work.mkdir()
    (tmp_path / "kickoff.md").write_text("kickoff")
    port, socket_name = free_port(), f"lp-tok-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "LOOPPHASE_SHIM_TOKEN": token}
    argv = [sys.executable, "-m", "loopphase.cli", "shim", "--role", "builder", "--backend",
            "sim", "--workdir", str(work), "--state-dir", str(state), "--scenario",
            str(scenario_file), "--kickoff-file", str(tmp_path / "kickoff.md"),
            "--continuation-text", "go on", "--phase-id", "flow", "--port", str(port),
            "--tmux-socket", socket_name]
    log = (tmp_path / "shim.log").open("wb")
    proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    client = ShimClient(f"http://127.0.0.1:{port}", token)
    try:
        await until(client.health, bool, timeout=20, what="shim health")
        st = await until(client.state, lambda s: s.alive and s.pid, timeout=20, what="agent up")
        agent = psutil.Process(st.pid)
        family = [agent, *agent.children(recursive=True)]
        tmux = [p for p in psutil.process_iter(["name"]) if p.info["name"] == "tmux: server"
                or "tmux" in (p.info["name"] or "")]
        for p in family + tmux:
            try:
                environ = p.environ()
            except psutil.Error:
                continue
            assert "LOOPPHASE_SHIM_TOKEN" not in environ, f"{p.pid} {p.name()} inherited it"
            assert token not in "\n".join(f"{k}={v}" for k, v in environ.items())
        assert (await client.state()).alive  # and the shim still authenticates with it
    finally:
        await client.close()
        proc.terminate()
        proc.wait(timeout=20)
        log.close()
        subprocess.run(["tmux", "-L", socket_name, "kill-server"], capture_output=True,
                       timeout=5, check=False)


def test_shim_process_is_not_dumpable() -> None:
    code = ("import ctypes; from loopphase.shim.server import make_non_dumpable as m; "
            "ok = m(); libc = ctypes.CDLL(None); print(ok, libc.prctl(3, 0, 0, 0, 0))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout.split()
    assert out == ["True", "0"]  # PR_GET_DUMPABLE answers 0 after the call (1 before)

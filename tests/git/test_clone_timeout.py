"""A local clone that times out leaves no git helper behind (hardening fault 12): the clone
runs in its own process group and the whole group is killed, as the git watcher already did."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import psutil
import pytest
from loopphase.api.spec import LoopPhaseSpec
from loopphase.git.errors import GitRemoteError
from loopphase.runtime import local


def helpers_for(port: int) -> list[str]:
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if f"127.0.0.1:{port}" in cmd:
            found.append(f"{proc.info['pid']}: {cmd}")
    return found


def test_timed_out_clone_kills_git_helpers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A server that accepts connections and never answers: git-remote-http waits forever.
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    monkeypatch.setattr(local, "GIT_TIMEOUT", 2.0)
    spec = LoopPhaseSpec.model_validate({
        "repo": {"url": f"http://127.0.0.1:{port}/r.git"},
        "phases": [{"id": "p1", "plan": "p.md", "statusFile": "S.md"}],
    })
    runtime = local.LocalRuntime(spec, tmp_path / "state", tmp_path)
    try:
        with pytest.raises(GitRemoteError, match="timed out"):
            runtime._ensure_clone("builder")
        assert held, "git never connected: the test did not exercise a hanging helper"
        deadline = time.monotonic() + 5
        while helpers_for(port) and time.monotonic() < deadline:
            time.sleep(0.1)  # SIGKILL delivery to the group is asynchronous
        assert helpers_for(port) == []
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        server.close()

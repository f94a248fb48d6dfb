"""Real opencode in the real shim: `opencode serve` on the scripted endpoint (as an
OpenAI-compatible provider), `opencode attach` in tmux, the bootstrap line typed by the shim,
the commit made by opencode's own bash tool; the working and the idle screen recorded."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from loopphase.core.screen import classify
from loopphase.demo.agents import opencode_config, wait_listening
from loopphase.modelserver.server import ModelServer
from loopphase.shim.client import ShimClient

from tests.realcli.conftest import TOOLS_BIN, free_port, init_repo, until
from tests.realcli.screens import observed

pytestmark = [pytest.mark.realcli, pytest.mark.timeout(240)]

BOOTSTRAP = "Read PLAN.md and make the p1 claim commit now."


@pytest.fixture
def opencode_server(tmp_path: Path, opencode_cli, model_server: ModelServer) -> Iterator[tuple[str, Path]]:
    workdir = init_repo(tmp_path / "work")
    port = free_port()
    env = {**os.environ,
           "OPENCODE_CONFIG_CONTENT": opencode_config(model_server.base_url("oc")),
           "OPENCODE_DISABLE_AUTOUPDATE": "1",
           "XDG_DATA_HOME": str(tmp_path / "server-xdg" / "data"),
           "XDG_STATE_HOME": str(tmp_path / "server-xdg" / "state"),
           "XDG_CONFIG_HOME": str(tmp_path / "server-xdg" / "config"),
           "XDG_CACHE_HOME": str(tmp_path / "server-xdg" / "cache")}
    log = (tmp_path / "opencode-serve.log").open("wb")
    proc = subprocess.Popen([opencode_cli[0], "serve", "--hostname", "127.0.0.1", "--port", str(port)],
                            cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        wait_listening(f"http://127.0.0.1:{port}/config")
        yield f"http://127.0.0.1:{port}", workdir
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        log.close()


async def test_opencode_kickoff_to_commit_and_footers(
    tmp_path: Path, opencode_server, opencode_cli, model_server: ModelServer, screens,
) -> None:
    server_url, workdir = opencode_server
    model_server.load(f"""
agents:
  oc:
    turns:
      - when: "{BOOTSTRAP}"
        bash: "echo v1 > widget.txt && git add -A && git commit -qm 'claim(p1-gate): widget' && echo committed-p1"
      - slow: {{seconds: 8, text: "Claimed the p1 gate; waiting for the review."}}
""")
    token = uuid.uuid4().hex
    (tmp_path / "token").write_text(token)
    (tmp_path / "kickoff.md").write_text("You are the Builder.\n" + BOOTSTRAP)
    port = free_port()
    socket_name = f"lp-realcli-oc-{uuid.uuid4().hex[:8]}"
    argv = [sys.executable, "-m", "loopphase.cli", "shim", "--role", "builder", "--backend", "opencode",
            "--workdir", str(workdir), "--state-dir", str(tmp_path / "state"),
            "--kickoff-file", str(tmp_path / "kickoff.md"), "--bootstrap-text", BOOTSTRAP,
            "--continuation-text", "Continue.", "--opencode-server", server_url,
            "--host", "127.0.0.1", "--port", str(port), "--token-file", str(tmp_path / "token"),
            "--tmux-socket", socket_name]
    env = {**os.environ, "PATH": os.pathsep.join([str(TOOLS_BIN), os.environ["PATH"]]),
           "HOME": str(tmp_path / "user-home")}
    log_path = tmp_path / "shim.log"
    with log_path.open("wb") as fh:
        proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, env=env)
    client = ShimClient(f"http://127.0.0.1:{port}", token, timeout=15.0)
    try:
        async def state():
            if proc.poll() is not None:
                raise AssertionError(log_path.read_text()[-3000:])
            try:
                return await client.state(lines=60)
            except Exception:  # noqa: BLE001 - the shim is still starting
                return None

        # the bootstrap line reaches the model; opencode's bash tool commits
        working = await until(state, lambda s: s is not None and "esc interrupt" in s.pane, 90,
                              "opencode working on the scripted turn")
        now = datetime.now(UTC)
        screens.save("opencode", opencode_cli[1], "working", working.pane, scenario="slow scripted turn streaming",
                     captured_at=now, tz="UTC", expected=observed(classify(working.pane, now, ZoneInfo("UTC"))))
        idle = await until(state, lambda s: "esc interrupt" not in s.pane and "waiting for the review" in s.pane,
                           60, "opencode idle after the turn")
        now = datetime.now(UTC)
        screens.save("opencode", opencode_cli[1], "idle", idle.pane, scenario="turn finished, prompt empty",
                     captured_at=now, tz="UTC", expected=observed(classify(idle.pane, now, ZoneInfo("UTC"))))
    finally:
        await client.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        subprocess.run(["tmux", "-L", socket_name, "kill-server"], capture_output=True, timeout=5, check=False)

    log = subprocess.run(["git", "log", "--format=%s"], cwd=workdir, capture_output=True, text=True,
                         timeout=10, check=True).stdout.splitlines()
    assert log[0] == "claim(p1-gate): widget", log
    main = [r for r in model_server.requests("oc") if r.main]
    assert main[0].human_text == BOOTSTRAP and main[1].tool_results == ["committed-p1\n"]
    # The working footer ("esc interrupt") reads as active, the idle screen as not.
    assert classify(working.pane, now, ZoneInfo("UTC")).active is not None
    assert classify(idle.pane, now, ZoneInfo("UTC")).active is None

"""`loopphase attach ROLE --cluster NAME`: the kubectl exec command, checked against the agent
pod the operator really creates and the real shim running it (fake kubelet): the command run
inside the "pod" attaches a real terminal (pexpect) to the shim's live tmux session."""

from __future__ import annotations

import asyncio
import os
import shlex
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pexpect
import pytest
from fake_kubelet import FakeKubelet, free_port
from loopphase.attach_cli import cluster_argv
from loopphase.operator.kubeapi import KubeApi
from loopphase.shim.server import SOCKET_FILE
from loopphase.testing.kmock_world import declare_resources
from operator_harness import bare_repo, eventually, running_operator
from test_real_shims import WORKING, create_lp, lp_body, pod, real_context

NS = "team-a"
MARKER = "CLUSTER-ATTACH-MARKER-7"
SHOWING_BUILDER = f"""\
phases:
  default:
    - say: {{text: "{MARKER} the builder is here"}}
    - idle: {{seconds: 600}}
"""


async def loopphase(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "loopphase.cli", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def test_the_command_is_an_argv_naming_pod_container_and_shim_state() -> None:
    assert cluster_argv("my-loop", "builder") == [
        "kubectl", "exec", "-it", "my-loop-builder", "-c", "agent", "--",
        "loopphase", "attach", "builder", "--shim-state", "/work/.loopphase/builder"]
    assert cluster_argv("my-loop", "adversary", namespace="team-a", context="prod",
                        read_write=True) == [
        "kubectl", "exec", "-it", "--context", "prod", "-n", "team-a", "my-loop-adversary",
        "-c", "agent", "--", "loopphase", "attach", "adversary", "--shim-state",
        "/work/.loopphase/adversary", "--rw"]


async def test_cli_prints_runs_and_refuses_mixed_arguments(tmp_path: Path) -> None:
    code, out, _ = await loopphase("attach", "builder", "--cluster", "my-loop", "-n", "team-a",
                                   "--print")
    assert code == 0 and shlex.split(out) == cluster_argv("my-loop", "builder", namespace="team-a")
    # Without --print it execs kubectl with exactly that argv: a stand-in kubectl on PATH
    # records what it was given.
    record = tmp_path / "argv.txt"
    kubectl = tmp_path / "bin" / "kubectl"
    kubectl.parent.mkdir()
    kubectl.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$0\" \"$@\" > {shlex.quote(str(record))}\n")
    kubectl.chmod(kubectl.stat().st_mode | stat.S_IXUSR)
    env = dict(os.environ, PATH=f"{kubectl.parent}{os.pathsep}{os.environ['PATH']}")
    code, _, err = await loopphase("attach", "adversary", "--cluster", "my-loop", "--rw", env=env)
    assert code == 0, err
    assert record.read_text().splitlines()[1:] == cluster_argv("my-loop", "adversary",
                                                               read_write=True)[1:]
    assert "running: kubectl exec -it my-loop-adversary" in err
    code, _, err = await loopphase("attach", "builder", "--cluster", "x", "--state-dir", "d")
    assert code == 2 and "give no --spec, --state-dir or --shim-state" in err
    code, _, err = await loopphase("attach", "builder", "-n", "team-a")
    assert code == 2 and "go with --cluster NAME" in err


def attach_in_pod(argv: list[str]) -> str:
    """Run ``argv`` in a real terminal: wait for the marker, type, detach (Ctrl-b d); returns
    what matched the marker."""
    child = pexpect.spawn(argv[0], argv[1:], dimensions=(50, 220), timeout=30, encoding="utf-8")
    try:
        child.expect("read-only")
        child.expect(MARKER)
        seen = str(child.after)
        child.send("typed-into-a-read-only-attach\r")
        child.send("\x02d")
        child.expect(r"\[detached")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0, child.before
    return seen


@pytest.mark.slow
async def test_the_command_attaches_to_the_pods_real_tmux_session(
    kmock: Any, kube: KubeApi, fake_kubelet: FakeKubelet, tmp_path: Path
) -> None:
    declare_resources(kmock)
    origin, _ = bare_repo(tmp_path)
    ctx = real_context(tmp_path, free_port())
    async with running_operator(kmock, ctx):
        await create_lp(kube, lp_body(str(origin), SHOWING_BUILDER, WORKING))
        shim = await eventually(lambda: fake_kubelet.shim("demo-builder"), timeout=60)
        argv = cluster_argv("demo", "builder", namespace=NS)

        # The command names what the operator really made: the pod, its container, the
        # program the container runs, and the shim's own --state-dir.
        agent_pod = pod(kmock, "demo-builder")
        assert agent_pod is not None
        container = agent_pod["spec"]["containers"][0]
        assert argv[argv.index("-n") + 1] == agent_pod["metadata"]["namespace"]
        assert argv[argv.index("-c") - 1] == agent_pod["metadata"]["name"]
        assert argv[argv.index("-c") + 1] == container["name"]
        in_pod = argv[argv.index("--") + 1:]
        assert in_pod[0] == container["command"][0] == "loopphase"
        shim_state = in_pod[in_pod.index("--shim-state") + 1]
        assert shim_state == container["args"][container["args"].index("--state-dir") + 1]

        # Inside the "pod": the kubelet runs the shim with the pod's argv, paths rewritten to
        # the pod's volume directories; the same rewrite for the command run there.
        mapped = shim.args[shim.args.index("--state-dir") + 1]
        assert mapped.endswith("/.loopphase/builder")
        socket_file = Path(mapped) / SOCKET_FILE
        await eventually(socket_file.exists, timeout=30)
        assert socket_file.read_text().strip() == shim.tmux_socket  # the shim's real socket
        command = [sys.executable, "-m", "loopphase.cli", *in_pod[1:]]
        command[command.index(shim_state)] = mapped
        assert await asyncio.to_thread(attach_in_pod, command) == MARKER
        assert shim.proc.poll() is None, "attaching disturbed the shim"
        pane = subprocess.run(["tmux", "-L", shim.tmux_socket, "capture-pane", "-p", "-t", "agent"],
                              capture_output=True, text=True, timeout=10, check=True).stdout
        assert MARKER in pane and "typed-into-a-read-only-attach" not in pane

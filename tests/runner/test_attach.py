"""`loopphase attach`: a real terminal (pexpect) attached to a sim agent's live tmux session."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pexpect
import pytest
from loopphase.runner.attach import AttachError, attach_argv, socket_name
from loopphase.runner.loop import Runner, TickReport
from loopphase.runner.specfile import load_spec

from tests.runner.test_local_e2e import QUIET_ADVERSARY, _write_spec, processes_under

pytestmark = pytest.mark.slow

MARKER = "ATTACH-MARKER-42"
SHOWING_BUILDER = f"""
phases:
  default:
    - say: {{text: "{MARKER} the builder is here"}}
    - idle: {{seconds: 600}}
"""


def typed_lines(state: Path, role: str) -> list[str]:
    path = state / "logs" / f"{role}.inputs.jsonl"
    if not path.exists():
        return []
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r["text"] for r in records if r["kind"] == "input"]


def pane(socket: str) -> str:
    return subprocess.run(["tmux", "-L", socket, "capture-pane", "-p", "-t", "agent"],
                          capture_output=True, text=True, timeout=10, check=True).stdout


def poll(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture()
def running_builder(tmp_path: Path):
    """A local run whose builder shows MARKER; the runner loop stopped (no heals, no pings),
    the shims left running as `loopphase run` leaves them."""
    spec_path = _write_spec(tmp_path, SHOWING_BUILDER, QUIET_ADVERSARY, phases=1)
    state = tmp_path / "state"
    runner = Runner(load_spec(spec_path), state)

    def shown(report: TickReport) -> None:
        obs = report.result.observations
        if obs is not None and "builder" in obs.agents and MARKER in obs.agents["builder"].pane:
            runner.request_stop()

    runner.on_tick = shown
    try:
        asyncio.run(asyncio.wait_for(runner.run(exit_on_complete=False), timeout=90))
        yield runner, state
    finally:
        asyncio.run(runner.stop_everything())
    assert processes_under(tmp_path) == []


def _attach(state: Path, *extra: str) -> pexpect.spawn:
    child = pexpect.spawn(sys.executable, ["-m", "loopphase.cli", "attach", "builder",
                                           "--state-dir", str(state), *extra],
                          dimensions=(50, 220), timeout=20, encoding="utf-8")
    return child


def _agent_pid(runner: Runner) -> int | None:
    return asyncio.run(runner.runtime.observe("builder")).pid


def test_read_only_attach_shows_the_screen_and_types_nothing(running_builder) -> None:
    runner, state = running_builder
    socket = socket_name(state / "shim-state" / "builder")
    pid_before = _agent_pid(runner)
    assert pid_before is not None
    typed_before = typed_lines(state, "builder")

    child = _attach(state)
    child.expect("read-only")
    child.expect(MARKER)  # the agent's live screen, drawn by tmux in our terminal
    child.send("rm -rf nothing-typed-here\r")
    child.send("\x02d")  # the tmux prefix (Ctrl-b), then d: detach
    child.expect(r"\[detached")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0

    # The agent is untouched: same process, still alive, not a key reached it.
    obs = asyncio.run(runner.runtime.observe("builder"))
    assert obs.alive and obs.pid == pid_before
    assert typed_lines(state, "builder") == typed_before
    assert "nothing-typed-here" not in pane(socket)


def test_rw_attach_types_into_the_agent(running_builder) -> None:
    """The control: with --rw the same keys do reach the agent (so the test above can fail)."""
    runner, state = running_builder
    pid_before = _agent_pid(runner)
    child = _attach(state, "--rw")
    child.expect("read-write")
    child.expect(MARKER)
    child.send("typed-through-attach\r")
    poll(lambda: "typed-through-attach" in typed_lines(state, "builder"), 15, "the typed line")
    child.send("\x02d")
    child.expect(r"\[detached")
    child.expect(pexpect.EOF)
    child.close()
    assert _agent_pid(runner) == pid_before


def test_no_socket_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(AttachError, match="loopphase run"):
        socket_name(tmp_path / "shim-state" / "builder")
    done = subprocess.run([sys.executable, "-m", "loopphase.cli", "attach", "builder", "--state-dir",
                           str(tmp_path)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 1 and "tmux.socket" in done.stderr


def test_attach_argv_is_read_only_unless_asked() -> None:
    assert attach_argv("s1", read_write=False) == ["tmux", "-L", "s1", "attach-session", "-t", "agent", "-r"]
    assert "-r" not in attach_argv("s1", read_write=True)


def _dead_socket(state_dir: Path, role: str = "builder") -> None:
    """A shim state that names a tmux socket with no server behind it (the run has stopped)."""
    shim = state_dir / "shim-state" / role
    shim.mkdir(parents=True)
    (shim / "tmux.socket").write_text(f"lp-test-gone-{os.getpid()}-{state_dir.name}\n")


def test_no_live_session_is_a_clear_error(tmp_path: Path) -> None:
    _dead_socket(tmp_path / "state")
    done = subprocess.run([sys.executable, "-m", "loopphase.cli", "attach", "builder", "--state-dir",
                           str(tmp_path / "state")], capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert done.stderr.strip() == (f"loopphase attach: no live agent for builder in {tmp_path / 'state'}: "
                                   "start the run with `loopphase run FILE`")
    assert "attaching" not in done.stderr


@pytest.mark.parametrize("how", [["lp.yaml"], ["--spec", "lp.yaml"]])
def test_spec_file_positional_or_spec_flag(tmp_path: Path, how: list[str]) -> None:
    from loopphase.runner.loop import default_state_dir
    from loopphase.runner.specfile import load_spec

    spec = tmp_path / "lp.yaml"
    spec.write_text("repo: {url: 'https://git.example.invalid/r.git'}\n"
                    "phases: [{id: p1, plan: p.md, statusFile: S.md}]\n")
    state = default_state_dir(load_spec(spec))
    _dead_socket(state)
    done = subprocess.run([sys.executable, "-m", "loopphase.cli", "attach", "builder", *how],
                          capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert f"no live agent for builder in {state}: start the run with `loopphase run lp.yaml`" in done.stderr
    both = subprocess.run([sys.executable, "-m", "loopphase.cli", "attach", "builder", "lp.yaml",
                           "--state-dir", str(state)], capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert both.returncode == 2 and "not allowed with" in both.stderr

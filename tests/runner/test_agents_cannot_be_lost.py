"""Faults: `--stop` raced a live runner (which restarted the agents, one record lost, that agent
running on unseen), and deleting the state directory mid-run led to two builders in one
working copy. Now agents carry LOOPPHASE_RUN_ID=<run id>/<role> in their environment, `--stop`
stops the runner first and finds agents by that marker, and no role is started while a
marked process of it lives. Real runners, shims, tmux and sim agents."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
import yaml
from loopphase.runtime.local import MARKER, marked_processes, run_id

from tests.runner.test_examples import seed_repo
from tests.runner.test_local_e2e import processes_under

pytestmark = pytest.mark.slow

FOREVER = "phases:\n  default:\n    - work: {seconds: 1}\n    - say: {text: working on it}\n"


def write_spec(root: Path) -> Path:
    bare = seed_repo(root / "git")
    manifest = {
        "apiVersion": "loopphase.dev/v1alpha1", "kind": "LoopPhase", "metadata": {"name": "mine"},
        "spec": {"repo": {"url": str(bare)},
                 "phases": [{"id": "phase-1", "plan": "plans/PHASE-1.md", "statusFile": "STATUS-phase-1.md"}],
                 "agents": {"builder": {"backend": "sim", "simScenario": FOREVER},
                            "adversary": {"backend": "sim", "simScenario": FOREVER}},
                 "timing": {"signalInterval": "0.5s", "startGrace": "2s"}},
    }
    path = root / "mine.yaml"
    path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    return path


def start_runner(spec: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "loopphase.cli", "run", str(spec), "--log-level", "warning"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


@contextlib.contextmanager
def live_runner(spec: Path, state: Path) -> Iterator[subprocess.Popen[str]]:
    """A `loopphase run` of ``spec`` (state in ``state``) with both agents up; on the way out
    the runner is killed if it still runs and every agent is stopped (`--stop`)."""
    runner = start_runner(spec)
    try:
        wait_for(lambda: both_agents_up(state), 90, "both agents up")
        yield runner
    finally:
        if runner.poll() is None:
            runner.kill()
        cli("run", str(spec), "--stop")


def cli(*argv: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "loopphase.cli", *argv], capture_output=True, text=True,
                          timeout=timeout)


def wait_for(check: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)  # polling real processes, bounded by the deadline
    raise AssertionError(f"timed out waiting for {what}")


def shims(state: Path, role: str) -> list[psutil.Process]:
    return [p for p in marked_processes(run_id(state), role) if "shim" in p.cmdline()]


def both_agents_up(state: Path) -> bool:
    try:
        status = json.loads((state / "status.json").read_text())["status"]
    except (OSError, ValueError, KeyError):
        return False
    agents = status.get("agents", {})
    return all(agents.get(r, {}).get("state") in {"Active", "Idle"} for r in ("builder", "adversary"))


def test_stop_stops_a_live_runner_first_and_nothing_comes_back(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    state = tmp_path / ".loopphase" / "mine"
    with live_runner(spec, state) as runner:
        stopped = cli("run", str(spec), "--stop")
        assert stopped.returncode == 0, stopped.stderr
        assert f"asking the live runner (pid {runner.pid}) to stop" in stopped.stdout
        assert runner.wait(timeout=30) == 0
        assert marked_processes(run_id(state)) == []
        assert processes_under(tmp_path) == []


def test_a_lost_record_is_readopted_by_marker_never_a_second_builder(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    state = tmp_path / ".loopphase" / "mine"
    with live_runner(spec, state) as runner:
        first = shims(state, "builder")
        assert len(first) == 1
        runner.terminate()
        assert runner.wait(timeout=30) == 0
        (state / "shims" / "builder.json").unlink()  # the record is lost; the shim runs on

        again = cli("run", str(spec), "--max-ticks", "4", "--log-level", "warning")
        assert again.returncode == 0, again.stderr
        assert [p.pid for p in shims(state, "builder")] == [first[0].pid]
        assert json.loads((state / "shims" / "builder.json").read_text())["pid"] == first[0].pid
    assert processes_under(tmp_path) == []


def test_deleting_the_state_dir_mid_run_is_an_error_not_a_second_builder(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    state = tmp_path / ".loopphase" / "mine"
    with live_runner(spec, state) as runner:
        builder = shims(state, "builder")
        assert len(builder) == 1
        shutil.rmtree(state)
        assert runner.wait(timeout=30) == 1
        err = runner.stderr.read() if runner.stderr else ""
        assert "was deleted or replaced while this run was using it" in err
        assert f"{MARKER}={run_id(state)}/<role>" in err and "--stop" in err

        # A new run must not start a second builder beside the live, now unadoptable one.
        again = cli("run", str(spec), "--max-ticks", "4", "--log-level", "warning")
        assert again.returncode == 0, again.stderr
        assert [p.pid for p in shims(state, "builder")] == [builder[0].pid]
        shown = cli("status", str(spec))
        assert "NeedsAttention" in shown.stdout and "CannotStart" in shown.stdout
        assert "still running" in shown.stdout

        stopped = cli("run", str(spec), "--stop")
        assert stopped.returncode == 0 and "builder:" in stopped.stdout
        assert marked_processes(run_id(state)) == []
    assert processes_under(tmp_path) == []

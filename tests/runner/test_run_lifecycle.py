"""Faults from a new-user trial of `loopphase run` (issue #12): a role not restarted for minutes
after `--stop` and run again, `status` showing agents of a run nobody drives, the runner's last
line after `--stop`, two runs of one branch at once, repair advice `repair` refuses, a broken
pipe traceback, tmux sockets left in /tmp, an invalid spec edit hiding the status. Real
runners, shims, tmux, git and sim agents."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from loopphase.runtime.local import marked_processes, run_id

from tests.runner.test_agents_cannot_be_lost import (
    both_agents_up,
    cli,
    live_runner,
    shims,
    start_runner,
    wait_for,
    write_spec,
)

pytestmark = pytest.mark.slow


def actions(state: Path) -> list[dict]:
    path = state / "actions.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line] if path.exists() else []


def test_a_new_runner_voids_the_start_requests_of_a_stopped_one(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    state = tmp_path / ".loopphase" / "mine"
    try:
        first = cli("run", str(spec), "--max-ticks", "1", "--log-level", "warning")
        assert first.returncode == 0, first.stderr
        saved = json.loads((state / "status.json").read_text())["status"]["agents"]
        assert saved["adversary"].get("startRequestedAt"), saved  # left behind by that runner
        stopped = cli("run", str(spec), "--stop")
        assert stopped.returncode == 0, stopped.stderr
        assert marked_processes(run_id(state)) == []
        starts_before = sum(a["action"] == "StartAgent" for a in actions(state))

        again = cli("run", str(spec), "--max-ticks", "2", "--log-level", "warning")
        assert again.returncode == 0, again.stderr
        starts = [a for a in actions(state) if a["action"] == "StartAgent"][starts_before:]
        assert {a["role"] for a in starts} == {"builder", "adversary"}
        assert len(shims(state, "adversary")) == 1 and len(shims(state, "builder")) == 1
        assert "requests left by an earlier runner are void" in again.stdout
        assert "adversary: start requested at" in again.stdout
    finally:
        cli("run", str(spec), "--stop")


def test_status_says_when_no_runner_is_live_and_which_agents_are_gone(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    state = tmp_path / ".loopphase" / "mine"
    with live_runner(spec, state) as runner:
        live = cli("status", str(spec))
        assert live.returncode == 0, live.stderr
        assert live.stdout.splitlines()[0] == f"runner live (pid {runner.pid})"

        runner.kill()  # kill -9: no chance to say anything
        runner.wait(timeout=30)
        dead = cli("status", str(spec))
        assert dead.stdout.startswith("NO RUNNER IS LIVE since "), dead.stdout
        assert "AGENT GONE" not in dead.stdout  # the shims outlive a killed runner
        started = time.monotonic()
        wait_for(lambda: time.monotonic() - started > 2.5, 10, "the clock to move on")
        assert cli("status", str(spec)).stdout == dead.stdout  # ages count to the last save

        assert cli("run", str(spec), "--stop").returncode == 0
        stopped = cli("status", str(spec))
        assert stopped.stdout.startswith("NO RUNNER IS LIVE since "), stopped.stdout
        assert "builder: " in stopped.stdout and stopped.stdout.count("AGENT GONE: ") == 2, stopped.stdout


def test_status_refuses_another_loops_state_dir(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    state = tmp_path / ".loopphase" / "mine"
    assert cli("run", str(spec), "--max-ticks", "1", "--log-level", "warning").returncode == 0
    try:
        other_root = tmp_path / "other"
        other_root.mkdir()
        other = write_spec(other_root)  # another repository
        manifest = yaml.safe_load(other.read_text())
        manifest["metadata"]["name"] = "theirs"
        other.write_text(yaml.safe_dump(manifest))
        shown = cli("status", str(other), "--state-dir", str(state))
        assert shown.returncode == 1, shown.stdout
        assert "holds the state of the LoopPhase 'mine', not 'theirs'" in shown.stderr
        manifest["metadata"]["name"] = "mine"
        other.write_text(yaml.safe_dump(manifest))
        shown = cli("status", str(other), "--state-dir", str(state))
        assert shown.returncode == 1, shown.stdout
        assert "holds the state of a run on" in shown.stderr
    finally:
        cli("run", str(spec), "--stop")


def test_the_runners_last_line_after_stop_says_every_agent_stopped(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    state = tmp_path / ".loopphase" / "mine"
    with live_runner(spec, state) as runner:
        stopped = cli("run", str(spec), "--stop")
        assert stopped.returncode == 0, stopped.stderr
        out, _ = runner.communicate(timeout=30)
        last = out.strip().splitlines()[-1]
        assert "agents keep running" not in out
        assert last.startswith("stopped by `loopphase run --stop` (pid "), last
        assert last.endswith("): every agent stopped")
        assert marked_processes(run_id(state)) == []
        assert not (state / "stop.request").exists()


def test_a_second_copy_of_a_spec_on_the_same_branch_is_refused(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    state = tmp_path / ".loopphase" / "mine"
    copy_dir = tmp_path / "copy"
    copy_dir.mkdir()
    manifest = yaml.safe_load(spec.read_text())
    manifest["spec"]["repo"]["url"] += "/"  # the same repository, spelt differently
    copy = copy_dir / "mine.yaml"
    copy.write_text(yaml.safe_dump(manifest))
    runner = start_runner(spec)
    try:
        wait_for(lambda: both_agents_up(state), 90, "both agents up")
        second = cli("run", str(copy), "--max-ticks", "3")
        assert second.returncode == 1, second.stdout + second.stderr
        assert f"another `loopphase run` (pid {runner.pid}, state dir {state.resolve()}" in second.stderr
        assert f"loopphase run {spec.resolve()} --stop" in second.stderr
        assert marked_processes(run_id(copy_dir / ".loopphase" / "mine")) == []
        assert len(shims(state, "builder")) == 1
    finally:
        if runner.poll() is None:
            runner.kill()
        cli("run", str(spec), "--stop")
        cli("run", str(copy), "--stop")
    again = cli("run", str(copy), "--max-ticks", "1", "--log-level", "warning")  # the lock went with its runner
    try:
        assert again.returncode == 0, again.stderr
    finally:
        cli("run", str(copy), "--stop")


def test_status_repair_advice_is_what_works(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    state = tmp_path / ".loopphase" / "mine"
    with live_runner(spec, state) as runner:

        def damaged_status() -> subprocess.CompletedProcess[str] | None:
            (state / "status.json").write_text("{cut")  # damaged under a live run
            shown = cli("status", str(spec))  # unless the runner saved in between
            return shown if shown.returncode == 1 else None

        shown = wait_for(damaged_status, 60, "status to read the damaged file")
        assert isinstance(shown, subprocess.CompletedProcess)
        assert f"a live `loopphase run` (pid {runner.pid}) drives this state" in shown.stderr
        assert "rewrites status.json on its next save" in shown.stderr
        assert "rebuild it from the journal" not in shown.stderr
        repaired = cli("repair", str(spec))
        assert repaired.returncode == 1 and "is driving" in repaired.stderr  # what status said
    (state / "status.json").write_text("{cut")
    shown = cli("status", str(spec))
    assert "rebuild it from the journal with `loopphase repair" in shown.stderr  # now it works
    assert cli("repair", str(spec)).returncode == 0

    (state / "status.json").write_text("{cut")
    (state / "status.journal.jsonl").unlink()
    shown = cli("status", str(spec))
    assert shown.returncode == 1
    assert "there is no journal to rebuild it from, so `loopphase repair` cannot" in shown.stderr
    assert f"move {state} away to start over" in shown.stderr
    assert "no journal to rebuild from" in cli("repair", str(spec)).stderr


def run_into_closed_pipe(*argv: str) -> subprocess.CompletedProcess[str]:
    """`loopphase ARGV | head -0`, made deterministic: the pipe's read end is closed before
    the command writes anything."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run([sys.executable, "-m", "loopphase.cli", *argv], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=90)
    finally:
        os.close(write_end)


def test_output_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    try:
        assert cli("run", str(spec), "--max-ticks", "1", "--log-level", "warning").returncode == 0
        for argv in (("status", str(spec)), ("--help",), ("validate", str(spec))):
            done = run_into_closed_pipe(*argv)
            assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, (argv, done.stderr)
            assert done.returncode == 141, (argv, done.returncode, done.stderr)
    finally:
        cli("run", str(spec), "--stop")


def test_a_start_stop_cycle_leaves_no_tmux_socket_behind(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    state = tmp_path / ".loopphase" / "mine"
    runner = start_runner(spec)
    sockets: list[Path] = []
    try:
        wait_for(lambda: both_agents_up(state), 90, "both agents up")
        base = Path(os.environ.get("TMUX_TMPDIR") or "/tmp") / f"tmux-{os.getuid()}"
        for role in ("builder", "adversary"):
            name = (state / "shim-state" / role / "tmux.socket").read_text().strip()
            sockets.append(base / name)
        assert all(path.exists() for path in sockets), sockets  # the servers run
    finally:
        if runner.poll() is None:
            runner.kill()
        assert cli("run", str(spec), "--stop").returncode == 0
    assert [path for path in sockets if path.exists()] == []


def degraded(state: Path) -> dict:
    try:
        conditions = json.loads((state / "status.json").read_text())["status"].get("conditions", [])
    except (OSError, ValueError, KeyError):
        return {}
    return next((c for c in conditions if c["type"] == "Degraded"), {})


def test_an_invalid_edit_is_a_condition_and_status_still_shows_the_run(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    state = tmp_path / ".loopphase" / "mine"
    good = spec.read_text()
    runner = start_runner(spec)
    try:
        wait_for(lambda: both_agents_up(state), 90, "both agents up")
        spec.write_text(good.replace("statusFile:", "statusFil:", 1))  # a misspelt field
        wait_for(lambda: degraded(state).get("reason") == "InvalidSpec", 30, "Degraded/InvalidSpec")
        condition = degraded(state)
        assert condition["status"] == "True"
        assert condition["message"].startswith("spec edit NOT applied (still running generation 1): ")
        assert "statusFil" in condition["message"]
        since = condition["lastTransitionTime"]

        shown = cli("status", str(spec))
        assert shown.returncode == 2
        assert "statusFil" in shown.stderr  # the spec error first
        assert shown.stdout.splitlines()[1] == f"runner live (pid {runner.pid})"
        assert "mine" in shown.stdout.splitlines()[3] and "Degraded(InvalidSpec)" in shown.stdout
        assert "INVALID SPEC: spec edit NOT applied" in shown.stdout
        assert degraded(state)["lastTransitionTime"] == since  # steady while the file stays bad

        spec.write_text(good)
        wait_for(lambda: degraded(state).get("reason") != "InvalidSpec", 30, "the condition cleared")
        assert cli("status", str(spec)).returncode == 0
    finally:
        spec.write_text(good)
        if runner.poll() is None:
            runner.terminate()
        out, _ = runner.communicate(timeout=30)
        cli("run", str(spec), "--stop")
    assert "spec edit NOT applied" in out and "the spec file is valid again" in out

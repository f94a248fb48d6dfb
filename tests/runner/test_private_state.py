"""Fault: the per-role shim record (with the bearer token) was world-readable and state files
followed symlinks; a state dir someone else created was used. Now: 0700 directories, 0600
files created without following symlinks, and foreign or others-writable state dirs refused."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from loopphase.runner.loop import Runner
from loopphase.runner.secure import UnsafeStateDir
from loopphase.runner.specfile import load_spec

from tests.runner.test_agents_cannot_be_lost import write_spec
from tests.runner.test_local_e2e import processes_under


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_secrets_are_private_and_never_written_through_a_symlink(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    state = tmp_path / ".loopphase" / "mine"
    victim = tmp_path / "victim.txt"
    victim.write_text("not yours\n")
    (state / "shims").mkdir(parents=True)
    os.chmod(tmp_path / ".loopphase", 0o700)
    os.chmod(state, 0o700)
    os.chmod(state / "shims", 0o700)
    (state / "shims" / "builder.token").symlink_to(victim)  # planted before the run
    runner = Runner(load_spec(spec))
    try:
        asyncio.run(asyncio.wait_for(runner.run(max_ticks=3), timeout=90))
        assert runner.runtime.record("builder") is not None
        assert victim.read_text() == "not yours\n"
        assert not (state / "shims" / "builder.token").is_symlink()
        for directory in (tmp_path / ".loopphase", state, state / "shims", state / "kickoff", state / "logs",
                          state / "work"):
            assert mode(directory) == 0o700, directory
        secrets = [*(state / "shims").iterdir(), *(state / "kickoff").iterdir(),
                   state / "status.json", state / "status.journal.jsonl", state / "actions.jsonl"]
        assert len(secrets) >= 7
        for path in secrets:
            assert mode(path) == 0o600, path
    finally:
        asyncio.run(runner.stop_everything())
    assert processes_under(tmp_path) == []


def test_a_state_dir_others_may_write_is_refused(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    state = tmp_path / ".loopphase" / "mine"
    state.mkdir(parents=True)
    os.chmod(state, 0o777)
    with pytest.raises(UnsafeStateDir, match="writable by others"):
        Runner(load_spec(spec))
    done = subprocess.run([sys.executable, "-m", "loopphase.cli", "run", str(spec)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "writable by others" in done.stderr and "chmod" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a directory to another user needs root")
def test_a_state_dir_owned_by_someone_else_is_refused(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    state = tmp_path / ".loopphase" / "mine"
    state.mkdir(parents=True, mode=0o700)
    os.chown(state, 65534, 65534)
    with pytest.raises(UnsafeStateDir, match="owned by uid 65534"):
        Runner(load_spec(spec))

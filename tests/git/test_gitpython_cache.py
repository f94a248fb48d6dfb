"""The cache on GitPython: object reads leave no git process behind, multi-line subjects read
as git's %s, a timed-out fetch kills git's whole process group."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import psutil
import pytest
from gitwatch_helpers import Remote
from loopphase.git import RemoteWatcher
from loopphase.git.errors import GitTimeoutError
from loopphase.git.runner import GitRunner

STATUS = "machine-docs/STATUS-1.md"


def git_children() -> list[str]:
    return [" ".join(p.cmdline()) for p in psutil.Process().children(recursive=True)
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE
            and "git" in (p.name() or "")]


def test_reads_leave_no_git_process_and_subjects_are_gits_percent_s(
    remote: Remote, tmp_path: Path
) -> None:
    w = RemoteWatcher(remote.url, "main", tmp_path / "cache", timeout=20)
    cursor = w.observe(None, [STATUS]).head
    sha = remote.commit("claim: gate 1\nstill the subject\n\nbody text", {STATUS: "working\n"})
    obs = w.observe(cursor, [STATUS, "missing.md", "machine-docs"])
    assert obs.commits[-1].sha == sha
    assert obs.commits[-1].subject == "claim: gate 1 still the subject"  # git log --format=%s
    assert obs.files == {STATUS: "working\n", "missing.md": None, "machine-docs": None}
    assert w.cache.reads >= 1
    assert git_children() == []  # GitPython's cat-file readers closed with each Repo


def test_a_timed_out_command_kills_its_whole_process_group(tmp_path: Path) -> None:
    """An upload-pack that hangs and has a child of its own: both die at the timeout."""
    child, leader = f"{3000 + os.getpid() % 1000}", f"{4000 + os.getpid() % 1000}"
    script = tmp_path / "upload-pack"
    script.write_text(f"#!/bin/sh\nsleep {child} &\nexec sleep {leader}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    runner = GitRunner(str(tmp_path / "nowhere.git"), timeout=1.0)
    with pytest.raises(GitTimeoutError, match="timed out after 1s"):
        runner.run(["ls-remote", f"--upload-pack={script}", str(tmp_path)])

    def survivors() -> list[str]:
        return [" ".join(p.info["cmdline"]) for p in psutil.process_iter(["cmdline"])
                if p.info["cmdline"] in (["sleep", child], ["sleep", leader])]

    deadline = time.monotonic() + 5
    while survivors() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert survivors() == []

"""Fixtures for tests/git: a real bare remote with a pushing clone, and a manual clock."""

from __future__ import annotations

from pathlib import Path

import pytest
from gitwatch_helpers import FakeClock, Remote, git


@pytest.fixture
def remote(tmp_path: Path) -> Remote:
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", str(bare), str(work))
    git(work, "symbolic-ref", "HEAD", "refs/heads/main")
    r = Remote(bare, work)
    r.commit("initial", {"README.md": "hello\n"})
    return r


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()

"""The machine-wide branch lock's key: one spelling per repository (no processes involved)."""

from __future__ import annotations

from pathlib import Path

import pytest
from loopphase.runner.branch_lock import BranchLock, BranchLocked, normalise_repo


@pytest.mark.parametrize("url", ["https://u:secret@GitHub.com/o/r.git/", "https://github.com/o/r",
                                 "https://github.com/o/r/"])
def test_https_spellings_of_one_repository_are_one_key(url: str) -> None:
    assert normalise_repo(url, Path("/")) == "https://github.com/o/r"


def test_scp_like_and_ssh_urls_are_one_key() -> None:
    assert normalise_repo("git@github.com:o/r.git", Path("/")) == "ssh://github.com/o/r"
    assert normalise_repo("ssh://git@github.com/o/r", Path("/")) == "ssh://github.com/o/r"


def test_local_paths_resolve_against_the_spec_folder(tmp_path: Path) -> None:
    (tmp_path / "repo.git").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "repo.git")
    want = f"file://{tmp_path.resolve()}/repo"
    for url, base in (("repo.git", tmp_path), (str(tmp_path / "x" / ".." / "repo.git"), Path("/")),
                      (f"file://{tmp_path}/repo.git", Path("/")), ("../link", tmp_path / "sub")):
        assert normalise_repo(url, base) == want, url


def test_other_branches_and_repositories_do_not_conflict(tmp_path: Path) -> None:
    def lock(url: str, branch: str) -> BranchLock:
        return BranchLock(url, branch, tmp_path, state_dir=tmp_path / "s", spec=tmp_path / "a.yaml",
                          directory=tmp_path / "locks")

    first = lock("https://github.com/o/r", "main")
    first.acquire()
    try:
        with pytest.raises(BranchLocked, match=r"already drives https://github.com/o/r.git branch main"):
            lock("https://github.com/o/r.git", "main").acquire()
        for other in (lock("https://github.com/o/r", "dev"), lock("https://github.com/o/q", "main")):
            other.acquire()
            other.release()
    finally:
        first.release()
    again = lock("https://github.com/o/r.git", "main")
    again.acquire()
    again.release()

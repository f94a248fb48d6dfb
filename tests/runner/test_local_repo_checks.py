"""Faults (issue 12, new-user trial): validate said "can start here" for a local repo.url that
is a NON-bare repository with the branch checked out (every push was then refused: "refusing to
update checked out branch"), and for a phase plan that is not on the branch. Now validate reads
the local repository (GitPython; real git repositories here) and names the field and the fix."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.runner.test_examples import seed_repo
from tests.runner.test_preflight import GOOD_SCENARIO, validate, write_spec

SIM = {"backend": "sim", "simScenario": GOOD_SCENARIO}


def git(*argv: str) -> str:
    return subprocess.run(["git", *argv], check=True, capture_output=True, text=True, timeout=60).stdout


def non_bare(tmp_path: Path) -> Path:
    bare = seed_repo(tmp_path / "git")
    work = tmp_path / "work"
    git("clone", "--quiet", str(bare), str(work))
    assert git("-C", str(work), "branch", "--show-current").strip() == "main"
    return work


def test_a_non_bare_repository_with_the_branch_checked_out_is_refused(tmp_path: Path, capsys) -> None:
    work = non_bare(tmp_path)
    code, text = validate(write_spec(tmp_path, SIM, url=str(work)), capsys)
    assert code == 1, text
    assert f"spec.repo.url: {work} is a non-bare repository with branch 'main' checked out" in text
    assert f"git clone --bare {work} {work}.git" in text
    assert "receive.denyCurrentBranch updateInstead" in text
    # What the check predicts is what git does: a push to it is refused.
    other = tmp_path / "other"
    git("clone", "--quiet", str(work), str(other))
    git("-C", str(other), "-c", "user.name=t", "-c", "user.email=t@x", "commit", "--quiet",
        "--allow-empty", "-m", "claim(g): x")
    push = subprocess.run(["git", "-C", str(other), "push", "origin", "HEAD:main"],
                          capture_output=True, text=True, timeout=60)
    assert "refusing to update checked out branch" in push.stderr


@pytest.mark.parametrize("setting", ["updateInstead", "ignore"])
def test_receive_deny_current_branch_that_allows_the_push_is_accepted(
        tmp_path: Path, capsys, setting: str) -> None:
    work = non_bare(tmp_path)
    git("-C", str(work), "config", "receive.denyCurrentBranch", setting)
    code, text = validate(write_spec(tmp_path, SIM, url=str(work)), capsys)
    assert "non-bare" not in text
    assert code == 0, text


def test_a_plan_that_is_not_on_the_branch_is_named(tmp_path: Path, capsys) -> None:
    bare = seed_repo(tmp_path / "git")
    path = write_spec(tmp_path, SIM, url=str(bare))
    path.write_text(path.read_text().replace("plans/PHASE-1.md", "plans/PHASE-9.md"))
    code, text = validate(path, capsys)
    assert code == 1, text
    assert "spec.phases[0].plan: plans/PHASE-9.md is not on branch 'main' of" in text, text
    assert "commit it and push it" in text


def test_a_bare_repository_with_the_plans_can_start(tmp_path: Path, capsys) -> None:
    bare = seed_repo(tmp_path / "git")
    code, text = validate(write_spec(tmp_path, SIM, url=str(bare)), capsys)
    assert code == 0, text

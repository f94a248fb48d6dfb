"""Fault (issue 12, second trial): `validate` said "valid ... can start here" for a repo.url
that does not exist and for a branch the remote does not have; the run then showed Starting,
retried the clone with backoff forever and ended "agents keep running" though none started.

Now validate and the run ask the repository (`git ls-remote`, real git, real bare repos) with a
field-named error and the fix; a lasting clone failure during a run is
NeedsAttention(CannotStart) with the whole reason, re-checked until it is fixed; network trouble
still backs off; the final line says no agent is running when none is."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from loopphase.git.probe import is_transient, probe_branch
from loopphase.runner.cli import final_line
from loopphase.runner.loop import Runner
from loopphase.runner.specfile import load_spec
from loopphase.runtime import local

from tests.runner.test_examples import seed_repo
from tests.runner.test_local_e2e import processes_under
from tests.runner.test_preflight import GOOD_SCENARIO, validate, write_spec

SIM = {"backend": "sim", "simScenario": GOOD_SCENARIO}


def cli(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "loopphase.cli", *argv], capture_output=True,
                          text=True, timeout=timeout)


def test_validate_refuses_a_repository_that_does_not_exist(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "nowhere" / "repo.git"
    code, text = validate(write_spec(tmp_path, SIM, url=str(missing)), capsys)
    assert code == 1, text
    assert f"spec.repo.url: {missing} does not exist on this machine" in text, text
    assert "git init --bare" in text and "can start here" not in text


def test_validate_refuses_a_branch_the_remote_does_not_have(tmp_path: Path, capsys) -> None:
    bare = seed_repo(tmp_path / "git")
    path = write_spec(tmp_path, SIM, url=str(bare))
    path.write_text(path.read_text().replace(f"url: {bare}", f"url: {bare}\n    branch: trunk"))
    code, text = validate(path, capsys)
    assert code == 1, text
    assert "spec.repo.branch: branch 'trunk' does not exist on" in text, text
    assert "its branches: main" in text and f"git push {bare} HEAD:trunk" in text


def test_an_empty_bare_repository_is_refused_with_the_fix(tmp_path: Path, capsys) -> None:
    """The runner clones `--branch main`, which git refuses on an empty repository (it never
    worked): validate says so before a run tries."""
    bare = tmp_path / "empty.git"
    subprocess.run(["git", "init", "--quiet", "--bare", str(bare)], check=True, timeout=30)
    code, text = validate(write_spec(tmp_path, SIM, url=str(bare)), capsys)
    assert code == 1
    assert "spec.repo.branch: branch 'main' does not exist" in text and "no branches yet" in text


def test_validate_accepts_a_reachable_repository_with_the_branch(tmp_path: Path, capsys) -> None:
    bare = seed_repo(tmp_path / "git")
    code, text = validate(write_spec(tmp_path, SIM, url=str(bare)), capsys)
    assert code == 0, text
    assert "can start here" in text
    assert probe_branch(f"file://{bare}", "main").ok


def test_the_run_refuses_a_missing_repository_before_starting_anything(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, SIM, url=str(tmp_path / "missing.git"))
    done = cli("run", str(spec))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "spec.repo.url:" in done.stderr and "nothing was started" in done.stderr
    assert not (tmp_path / ".loopphase" / "mine" / "status.json").exists()


def test_network_trouble_is_transient_and_the_rest_lasting() -> None:
    assert is_transient("git ls-remote failed (exit 128): fatal: unable to access 'http://x/': "
                        "Failed to connect to 127.0.0.1 port 9: Connection refused")
    assert is_transient("git clone timed out after 120s (https://example.com/r.git)")
    assert not is_transient("git clone failed (exit 128): fatal: '/x.git' does not appear to be "
                            "a git repository")
    assert not is_transient("git clone failed (exit 128): fatal: Remote branch trunk not found "
                            "in upstream origin")


def test_a_repository_lost_during_the_run_is_cannot_start_until_it_is_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Preflight passed, then the repository went away before the first clone: every role is
    NeedsAttention(CannotStart) at once with the field and the fix, started once (not a backoff
    loop); once the repository is back the roles start."""
    monkeypatch.setattr(local, "REPO_RECHECK", 0.3)
    bare = seed_repo(tmp_path / "git")
    runner = Runner(load_spec(write_spec(tmp_path, SIM, url=str(bare))), tmp_path / "state")
    aside = bare.with_name("aside.git")
    bare.rename(aside)
    try:
        status = asyncio.run(asyncio.wait_for(runner.run(max_ticks=8), timeout=120))
        for role in ("builder", "adversary"):
            agent = status.agents[role]
            assert agent.state == "NeedsAttention", (role, agent)
            assert agent.attention is not None and agent.attention.reason == "CannotStart"
            assert agent.attention.message.startswith(f"spec.repo.url: {bare} does not exist")
            starts = [a for a in runner.store.read_actions()
                      if a["role"] == role and a["action"] == "StartAgent"]
            assert len(starts) == 1, starts
        line = final_line(runner, status)
        assert line.startswith("no agent is running") and "agents keep running" not in line
        assert "builder: NeedsAttention(CannotStart): spec.repo.url:" in line

        aside.rename(bare)

        async def until_started() -> None:
            nonlocal status
            for _ in range(60):
                status = (await runner.tick_once(status)).status
                if all(status.agents[r].state not in {"NeedsAttention"} for r in ("builder", "adversary")) \
                        and runner.runtime.record("builder") is not None:
                    return
                await asyncio.sleep(0.2)  # the next tick; bounded by the loop count
            raise AssertionError(f"roles did not start once the repository was back: {status.agents}")

        asyncio.run(asyncio.wait_for(until_started(), timeout=120))
        assert "agents keep running (builder" in final_line(runner, status)
    finally:
        asyncio.run(runner.stop_everything())
    assert processes_under(tmp_path) == []


def test_an_unreachable_server_still_backs_off_and_the_end_says_nothing_runs(tmp_path: Path) -> None:
    """Connection refused may pass by itself: the run starts (warning), the clone is retried,
    and when it stops the last line does not claim agents keep running."""
    spec = write_spec(tmp_path, SIM, url="http://127.0.0.1:9/r.git")
    done = cli("run", str(spec), "--max-ticks", "3")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "warning: spec.repo.url: cannot reach the repository" in done.stderr, done.stderr
    assert "agents keep running" not in done.stdout, done.stdout
    assert "no agent is running" in done.stdout, done.stdout

"""Done-when: a new user's own two-phase sim spec, written from the docs alone, runs to
Complete. The repository is prepared by running docs/local.md's own shell block (section 1);
the spec is tests/runner/fixtures/newcomer-two-phase.yaml (see its header for where it came
from). Real CLI, shims, tmux, git."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.runner.test_local_e2e import processes_under

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def docs_shell_block(heading: str) -> str:
    text = (ROOT / "docs" / "local.md").read_text()
    section = text.split(heading, 1)[1]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, f"no shell block under {heading!r}"
    return match.group(1)


def cli(*argv: str, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "loopphase.cli", *argv], capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_a_spec_written_from_the_docs_runs_to_complete(tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(tmp_path)}
    subprocess.run(["bash", "-euc", docs_shell_block("## 1. A repository with two plans")], check=True,
                   env=env, cwd=tmp_path, timeout=60, capture_output=True)
    loops = tmp_path / "loops"
    spec = loops / "newcomer.yaml"
    fixture = (Path(__file__).parent / "fixtures" / "newcomer-two-phase.yaml").read_text()
    spec.write_text(fixture.replace("REPO_URL", str(loops / "origin.git")))
    (loops / "prompts").mkdir()
    (loops / "prompts" / "builder.md").write_text("You are the Builder of the parser.\n")
    (loops / "scenarios").mkdir()
    (loops / "scenarios" / "adversary.yaml").write_text("phases:\n  default:\n    - say: {text: ok}\n")

    checked = cli("validate", str(spec), env=env, timeout=30)
    assert checked.returncode == 0, checked.stderr
    try:
        done = cli("run", str(spec), env=env, timeout=180)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "parser-loop: Complete (2/2)" in done.stdout, done.stdout + done.stderr
    finally:
        cli("run", str(spec), "--stop", env=env, timeout=60)
    assert processes_under(tmp_path) == []


def test_the_docs_own_example_runs_to_complete(tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(tmp_path)}
    subprocess.run(["bash", "-euc", docs_shell_block("## 1. A repository with two plans")], check=True,
                   env=env, cwd=tmp_path, timeout=60, capture_output=True)
    text = (ROOT / "docs" / "local.md").read_text().split("## 2. The spec", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", text, re.S)
    assert block
    spec = tmp_path / "loops" / "my-loop.yaml"
    spec.write_text(re.sub(r"url: \S+", f"url: {tmp_path / 'loops' / 'origin.git'}", block.group(1), count=1))
    try:
        done = cli("run", str(spec), env=env, timeout=180)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "my-loop: Complete (2/2)" in done.stdout, done.stdout + done.stderr
    finally:
        cli("run", str(spec), "--stop", env=env, timeout=60)
    assert processes_under(tmp_path) == []

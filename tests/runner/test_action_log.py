"""Fault (issue 12, second trial): `loopphase run` logged every action twice (the tick logger
and the run logger), and a failed start's second line showed the attempt's reason ("no host;
starting cold"), not the failure. Now one line per action (kind, role, rule, the core's reason)
and a failed one says FAILED and why (real `loopphase run`, output captured)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.runner.test_examples import seed_repo
from tests.runner.test_local_e2e import processes_under
from tests.runner.test_preflight import GOOD_SCENARIO, write_spec

SIM = {"backend": "sim", "simScenario": GOOD_SCENARIO}


def cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "loopphase.cli", *argv], capture_output=True,
                          text=True, timeout=180)


def action_lines(text: str, role: str, rule: str) -> list[str]:
    return [line for line in text.splitlines() if f"role={role} rule={rule}" in line]


def test_each_action_is_logged_once(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, SIM, url=str(seed_repo(tmp_path / "git")))
    try:
        done = cli("run", str(spec), "--max-ticks", "3")
    finally:
        cli("run", str(spec), "--stop")
    assert done.returncode == 0, done.stdout + done.stderr
    log = done.stderr
    for role in ("builder", "adversary"):
        lines = action_lines(log, role, "converge.no-host")
        assert len(lines) == 1, lines
        assert re.search(r"StartAgent role=\w+ rule=converge.no-host mode=cold phase=0: no host; "
                         r"starting cold -> ok \(shim pid \d+ on port \d+\)", lines[0]), lines[0]
    init = action_lines(log, "None", "phase.init")
    assert len(init) == 1 and "starting at phase phase-1" in init[0], init
    assert processes_under(tmp_path) == []


def test_a_failed_start_says_it_failed_and_why(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, SIM, url="http://127.0.0.1:9/r.git")  # nothing listens: refused
    done = cli("run", str(spec), "--max-ticks", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    for role in ("builder", "adversary"):
        lines = action_lines(done.stderr, role, "converge.no-host")
        assert len(lines) == 1, lines  # one attempt in two ticks, one line for it
        assert "-> FAILED: git clone failed" in lines[0] and "127.0.0.1" in lines[0], lines[0]
        assert "WARNING" in lines[0]
    assert "ok=False" not in done.stderr

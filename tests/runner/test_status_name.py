"""Fault (issue 12, second trial): `loopphase status FILE --state-dir D` showed the name
`loopphase` instead of the spec's metadata.name. Now the name comes from FILE when given,
else from the run's own record in D (real `loopphase run` and `loopphase status`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.runner.test_examples import seed_repo
from tests.runner.test_local_e2e import processes_under
from tests.runner.test_preflight import GOOD_SCENARIO, write_spec


def cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "loopphase.cli", *argv], capture_output=True,
                          text=True, timeout=120)


def test_status_names_the_run_after_its_spec_with_an_explicit_state_dir(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, {"backend": "sim", "simScenario": GOOD_SCENARIO},
                      url=str(seed_repo(tmp_path / "git")))
    state = tmp_path / "elsewhere"
    try:
        ran = cli("run", str(spec), "--state-dir", str(state), "--max-ticks", "2")
        assert ran.returncode == 0, ran.stdout + ran.stderr
        for argv in ((str(spec), "--state-dir", str(state)), ("--state-dir", str(state))):
            shown = cli("status", *argv)
            assert shown.returncode == 0, shown.stderr
            row = shown.stdout.splitlines()[2].split()  # after the runner-live line and the header
            assert row[0] == "mine", (argv, shown.stdout)
            assert "loopphase" not in row
    finally:
        cli("run", str(spec), "--state-dir", str(state), "--stop")
    assert processes_under(tmp_path) == []

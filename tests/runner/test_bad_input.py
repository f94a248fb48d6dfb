"""Fault: bad input gave tracebacks (non-UTF-8 spec, `--log-level foo`), and validate accepted
names that escape `.loopphase/` or that kubectl refuses, wrong apiVersions and duplicate YAML
keys; a spec copied with a new repo but the same name reused the old state."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from loopphase.runner.loop import Runner
from loopphase.runner.specfile import load_spec
from loopphase.runner.store import StateMismatch

GOOD = """apiVersion: loopphase.dev/v1alpha1
kind: LoopPhase
metadata:
  name: {name}
spec:
  repo: {{url: {url}}}
  phases:
    - {{id: p1, plan: plans/PHASE-1.md, statusFile: STATUS-p1.md}}
  agents:
    builder: {{backend: sim, simScenario: "phases: {{default: []}}"}}
"""


def cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "loopphase.cli", *argv], capture_output=True, text=True,
                          timeout=60)


def spec_file(tmp_path: Path, text: str | bytes, name: str = "lp.yaml") -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


@pytest.mark.parametrize(("text", "words"), [
    (GOOD.format(name="mine", url="/r.git").encode("utf-16"), "not UTF-8 text"),
    (GOOD.format(name="mine", url="/r.git").replace("# x", "") + "# caf\xe9\n", None),
    (GOOD.format(name="../../escape", url="/r.git"), "metadata.name '../../escape' is not a valid Kubernetes name"),
    (GOOD.format(name="'My Loop'", url="/r.git"), "metadata.name 'My Loop' is not a valid Kubernetes name"),
    (GOOD.format(name="mine", url="/r.git").replace("v1alpha1", "v1"), "apiVersion is 'loopphase.dev/v1'"),
    (GOOD.format(name="mine", url="/r.git").replace("kind: LoopPhase", "kind: Loopphase"), "kind is 'Loopphase'"),
    (GOOD.format(name="mine", url="/r.git").replace("  phases:", "  phases: []\n  phases:"),
     "duplicate key 'phases' (first on line 7, again on line 8)"),
    (GOOD.format(name="mine", url="/r.git").replace("metadata:\n  name: mine\n", ""), "metadata.name is required"),
])
def test_bad_specs_get_a_clear_error_never_a_traceback(tmp_path: Path, text: str | bytes, words: str | None) -> None:
    path = spec_file(tmp_path, text if isinstance(text, bytes) else text.encode("latin-1"))
    for argv in (["validate", "--cluster", str(path)], ["run", str(path)], ["status", str(path)]):
        done = cli(*argv)
        assert "Traceback" not in done.stderr, done.stderr
        if words is not None:
            assert done.returncode != 0 and words in done.stderr, (argv, done.stderr)
    if words is None:  # a latin-1 byte in a comment is still not UTF-8
        assert "not UTF-8 text" in cli("validate", str(path)).stderr


def test_log_level_is_checked_by_every_subcommand_that_takes_one(tmp_path: Path) -> None:
    for command in ("run", "demo", "shim", "bench", "model-server"):
        done = cli(command, "--log-level", "foo")
        assert done.returncode == 2 and "Traceback" not in done.stderr
        assert "'foo' is not a log level" in done.stderr, (command, done.stderr)


def test_state_is_bound_to_its_repository(tmp_path: Path) -> None:
    """A spec copied with a new repo but the same name must not reuse (and report) the old
    state: refused, naming both repositories and the way out."""
    first = spec_file(tmp_path, GOOD.format(name="mine", url="/srv/a.git"))
    Runner(load_spec(first)).store.check_binding("/srv/a.git", "main")
    from tests.runner.test_examples import seed_repo

    other = seed_repo(tmp_path / "b")  # exists: the run's repository check passes
    copy = spec_file(tmp_path, GOOD.format(name="mine", url=str(other)))
    runner = Runner(load_spec(copy))
    with pytest.raises(StateMismatch, match=f"/srv/a.git branch main, but the spec now says {other}"):
        runner.store.check_binding(runner.spec.repo.url, runner.spec.repo.branch)
    done = cli("run", str(copy), "--max-ticks", "1")
    assert done.returncode == 1 and "own metadata.name" in done.stderr and "Traceback" not in done.stderr

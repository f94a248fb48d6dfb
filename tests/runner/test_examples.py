"""Every shipped example runs to Complete with `loopphase run` on this machine.

The repository is the one the examples' git server (manifests/examples/git-server.yaml) serves,
built here by running that manifest's own seed script into a temp dir; only repo.url is
changed (to the local bare repository). The real CLI runs in a subprocess, as a user runs it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.runner.test_local_e2e import processes_under

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "manifests" / "examples"


def loopphase_examples() -> list[Path]:
    found = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
        if any(d.get("kind") == "LoopPhase" for d in docs):
            found.append(path)
    return found


def seed_repo(root: Path) -> Path:
    """Run the git server's seed script with GIT_ROOT=root; returns the bare repository."""
    docs = list(yaml.safe_load_all((EXAMPLES / "git-server.yaml").read_text()))
    script = next(d for d in docs if d["kind"] == "ConfigMap")["data"]["seed.sh"]
    subprocess.run(["sh", "-c", script], check=True, timeout=60, capture_output=True,
                   env={**os.environ, "GIT_ROOT": str(root)})
    return root / "demo.git"


def run_cli(*argv: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "loopphase.cli", *argv], capture_output=True,
                          text=True, timeout=timeout)


def test_the_examples_are_found() -> None:
    names = {p.name for p in loopphase_examples()}
    assert {"sim-two-phase.yaml", "claude-two-phase.yaml"} <= names


@pytest.mark.parametrize("example", loopphase_examples(), ids=lambda p: p.stem)
def test_every_shipped_example_runs_to_complete_locally(example: Path, tmp_path: Path) -> None:
    manifest = yaml.safe_load(example.read_text())
    backends = {a.get("backend", "claude") for a in manifest["spec"].get("agents", {}).values() if a}
    if backends - {"sim"}:
        pytest.skip(f"{example.name} runs {', '.join(sorted(backends - {'sim'}))} agents with an API "
                    "key and cluster-only prompts (ConfigMap): it is exercised on kind (tests/e2e)")
    bare = seed_repo(tmp_path / "git")
    manifest["spec"]["repo"]["url"] = str(bare)
    spec = tmp_path / example.name
    spec.write_text(yaml.safe_dump(manifest, sort_keys=False))
    assert run_cli("validate", str(spec), timeout=30).returncode == 0
    try:
        done = run_cli("run", str(spec), timeout=240)
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"{manifest['metadata']['name']}: Complete" in done.stdout, done.stdout + done.stderr
        log = subprocess.run(["git", "--git-dir", str(bare), "log", "--format=%s", "main"],
                             capture_output=True, text=True, check=True, timeout=30).stdout
        assert log.count("done: phase complete") == len(manifest["spec"]["phases"])
    finally:
        run_cli("run", str(spec), "--stop", timeout=60)
    assert processes_under(tmp_path) == []

"""A real ``loopphase validate`` + ``loopphase run`` of a one-role sim spec whose repository URL
carries credentials, and everything the run left behind, for the no-leak tests."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml


@dataclass(frozen=True)
class LocalRunOutputs:
    """``validate_stderr``: what ``validate`` printed on stderr; ``outputs``: name -> text for
    the run's stdout+stderr and every file under the state directory."""

    validate_stderr: str
    outputs: dict[str, str]

    def leaks(self, secrets: tuple[str, ...]) -> list[str]:
        """``"<secret> in <where>"`` for every secret found anywhere (empty: nothing leaked)."""
        return [f"{secret!r} in {name}" for name, text in self.outputs.items()
                for secret in secrets if secret in text]

    @property
    def everything(self) -> str:
        return "\n".join(self.outputs.values())


def run_locally_with_repo_url(tmp_path: Path, url: str, *, max_ticks: int = 3) -> LocalRunOutputs:
    """Write the spec under ``tmp_path``, validate it, run it for ``max_ticks`` ticks (timeouts:
    60 s and 120 s) and collect what it printed and wrote."""
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text("phases: {default: [{work: {seconds: 1}}]}\n")
    manifest = {
        "apiVersion": "loopphase.dev/v1alpha1", "kind": "LoopPhase", "metadata": {"name": "leak"},
        "spec": {"repo": {"url": url},
                 "phases": [{"id": "p1", "plan": "p1.md", "statusFile": "S1.md"}],
                 "agents": {"builder": {"backend": "sim", "simScenario": str(scenario)}}},
    }
    spec_file = tmp_path / "lp.yaml"
    spec_file.write_text(yaml.safe_dump(manifest))
    validate = subprocess.run([sys.executable, "-m", "loopphase.cli", "validate", str(spec_file)],
                              capture_output=True, text=True, timeout=60)
    run = subprocess.run(
        [sys.executable, "-m", "loopphase.cli", "run", str(spec_file), "--max-ticks", str(max_ticks)],
        capture_output=True, text=True, timeout=120,
    )
    outputs = {"stdout+stderr": run.stdout + run.stderr}
    for path in (tmp_path / ".loopphase").rglob("*"):
        if path.is_file():
            outputs[str(path)] = path.read_text(errors="replace")
    return LocalRunOutputs(validate.stderr, outputs)

"""Fault: a rerun of README's "One shim by hand" (same --workdir, so the same default state dir
and transcript.log) printed the previous run's transcript again. A new shim prints only what
its own agent shows. Real shims, tmux and sim agents."""

from __future__ import annotations

import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.shim.conftest import free_port


def run_shim(tmp_path: Path, workdir: Path, text: str, phase: str) -> str:
    """Start a shim whose sim agent says ``text``; stop it once its stdout shows it."""
    scenario = tmp_path / f"{phase}.yaml"
    scenario.write_text(f"phases:\n  default:\n    - say: {{text: {text}}}\n")
    (tmp_path / "kickoff.txt").write_text("You are the builder.")
    (tmp_path / "token").write_text(secrets.token_urlsafe(32))
    proc = subprocess.Popen(
        [sys.executable, "-m", "loopphase.cli", "shim", "--role", "builder", "--backend", "sim",
         "--workdir", str(workdir), "--scenario", str(scenario), "--phase-id", phase,
         "--kickoff-file", str(tmp_path / "kickoff.txt"), "--continuation-text", "Continue.",
         "--host", "127.0.0.1", "--port", str(free_port()), "--token-file", str(tmp_path / "token"),
         "--log-level", "WARNING"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    lines: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while not any(text in line for line in lines):
            assert time.monotonic() < deadline, f"the shim never printed {text!r}: {lines}"
            time.sleep(0.1)  # polling the reader thread, bounded by the deadline
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        reader.join(timeout=5)
    return "".join(lines)


def test_a_rerun_does_not_replay_the_previous_transcript(tmp_path: Path) -> None:
    workdir = tmp_path / "w"
    workdir.mkdir()
    first = run_shim(tmp_path, workdir, "first-run-said-this", "one")
    assert "[agent]" in first
    second = run_shim(tmp_path, workdir, "second-run-said-this", "two")
    assert "first-run-said-this" not in second

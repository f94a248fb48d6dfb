"""The real-CLI demo's pieces that need no CLI: its script is valid, a missing CLI is named."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from loopphase.demo import main as demo_main
from loopphase.demo.agents import demo_script
from loopphase.modelserver.script import load_script


def test_demo_script_is_a_valid_model_script(tmp_path: Path) -> None:
    workdirs = {"builder": tmp_path / "work" / "builder", "adversary": tmp_path / "work" / "adversary"}
    script = load_script(yaml.safe_dump(demo_script(workdirs)))
    assert set(script.agents) == {"demo-builder", "demo-adversary"}
    builder = script.agents["demo-builder"]
    assert builder.system_match is not None and builder.system_match.search(f"cwd: {workdirs['builder']}")
    assert not builder.system_match.search(f"cwd: {workdirs['adversary']}")
    kinds = [t.kind for t in builder.turns]
    assert "limit" in kinds and kinds.count("bash") >= 6
    assert any(t.kind == "error" for t in script.agents["demo-adversary"].turns)


def test_demo_with_a_missing_cli_says_how_to_install(monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # tmux/git missing too: the CLI check comes first
    monkeypatch.setattr("shutil.which", lambda name, *a, **k: None if name in {"claude", "opencode"} else "/bin/true")
    assert demo_main.main(["--agents", "claude"]) == 2
    err = capsys.readouterr().err
    assert "claude is not on PATH" in err and "dev.py demo --agents claude" in err

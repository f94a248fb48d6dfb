"""Fault: `validate` said valid for specs that can never start, and the run climbed the heal
ladder for six minutes with the cause cut at 90 characters. Now validate and the run check
what this machine can check, with field-named errors, and a role that cannot start is
NeedsAttention(CannotStart) at once with the whole reason (real shims, real files)."""

from __future__ import annotations

import asyncio
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from loopphase.api.base import clip
from loopphase.api.validate_cli import main as validate_main
from loopphase.runner.loop import Runner
from loopphase.runner.specfile import load_spec
from loopphase.shim.client import ShimClient, to_observation

from tests.runner.test_examples import seed_repo
from tests.runner.test_local_e2e import processes_under
from tests.shim.conftest import free_port

GOOD_SCENARIO = "phases:\n  default:\n    - work: {seconds: 1}\n"


def write_spec(root: Path, builder: dict, adversary: dict | None = None, url: str = "/nonexistent.git") -> Path:
    agents = {"builder": builder, "adversary": adversary or {"backend": "sim", "simScenario": GOOD_SCENARIO}}
    manifest = {
        "apiVersion": "loopphase.dev/v1alpha1", "kind": "LoopPhase", "metadata": {"name": "mine"},
        "spec": {"repo": {"url": url},
                 "phases": [{"id": "phase-1", "plan": "plans/PHASE-1.md", "statusFile": "STATUS-phase-1.md"}],
                 "agents": agents, "timing": {"signalInterval": "0.5s"}},
    }
    path = root / "mine.yaml"
    path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    return path


def validate(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = validate_main([str(path)])
    out = capsys.readouterr()
    return code, out.out + out.err


@pytest.fixture()
def only_tmux_and_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """PATH with tmux and git only (no claude, no opencode), whatever this machine has."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("tmux", "git"):
        found = shutil.which(tool)
        assert found, f"{tool} is needed by these tests"
        (bindir / tool).symlink_to(found)
    monkeypatch.setenv("PATH", str(bindir))


@pytest.mark.parametrize(("builder", "field", "words"), [
    ({"backend": "sim"}, "agents.builder.simScenario", "required for backend sim"),
    ({"backend": "sim", "simScenario": "scenarios/builder.yaml"}, "agents.builder.simScenario",
     "scenarios/builder.yaml does not exist"),
    ({"backend": "sim", "simScenario": "phases:\n  default:\n    - wrok: {seconds: 1}\n"},
     "agents.builder.simScenario", "unknown step kind 'wrok'"),
    ({"backend": "sim", "simScenario": GOOD_SCENARIO, "prompt": {"file": "prompts/builder.md"}},
     "agents.builder.prompt.file", "prompts/builder.md does not exist"),
    ({"backend": "claude"}, "agents.builder.backend", "'claude' command, which is not on PATH"),
    ({"backend": "sim", "simScenario": GOOD_SCENARIO, "prompt": {"configMapKeyRef": {"name": "p", "key": "b.md"}}},
     "agents.builder.prompt.configMapKeyRef", "only on a cluster"),
])
def test_validate_refuses_specs_that_cannot_start(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  only_tmux_and_git: None, builder: dict, field: str,
                                                  words: str) -> None:
    code, text = validate(write_spec(tmp_path, builder), capsys)
    assert code == 1, text
    assert f"{field}:" in text and words in text, text


def test_scenario_files_are_read_relative_to_the_spec_and_checked(tmp_path: Path, capsys) -> None:
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "builder.yaml").write_text("phases:\n  default:\n    - sleep: {}\n")
    code, text = validate(write_spec(tmp_path, {"backend": "sim", "simScenario": "scenarios/builder.yaml"}), capsys)
    assert code == 1 and "agents.builder.simScenario" in text and "unknown step kind 'sleep'" in text
    (tmp_path / "scenarios" / "builder.yaml").write_text(GOOD_SCENARIO)
    bare = seed_repo(tmp_path / "git")
    code, text = validate(write_spec(tmp_path, {"backend": "sim", "simScenario": "scenarios/builder.yaml"},
                                     url=str(bare)), capsys)
    assert code == 0, text


def test_the_run_refuses_before_starting_anything(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, {"backend": "sim", "simScenario": "missing.yaml"})
    done = subprocess.run([sys.executable, "-m", "loopphase.cli", "run", str(spec)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "agents.builder.simScenario" in done.stderr and "missing.yaml does not exist" in done.stderr
    assert "nothing was started" in done.stderr
    assert not (tmp_path / ".loopphase" / "mine" / "status.json").exists()


def test_a_role_that_cannot_start_is_needs_attention_at_once(tmp_path: Path) -> None:
    """The scenario goes missing after the check: the builder is never started, never healed,
    the whole reason is in status; the adversary runs normally."""
    bare = seed_repo(tmp_path / "git")
    (tmp_path / "b.yaml").write_text(GOOD_SCENARIO)
    spec = write_spec(tmp_path, {"backend": "sim", "simScenario": "b.yaml"}, url=str(bare))
    runner = Runner(load_spec(spec), tmp_path / "state")
    (tmp_path / "b.yaml").unlink()
    try:
        status = asyncio.run(asyncio.wait_for(runner.run(max_ticks=6), timeout=90))
        builder = status.agents["builder"]
        assert builder.state == "NeedsAttention"
        assert builder.attention is not None and builder.attention.reason == "CannotStart"
        assert builder.attention.message.startswith("spec.agents.builder.simScenario: scenario file ")
        assert str(tmp_path / "b.yaml") in builder.attention.message
        actions = runner.store.read_actions()
        assert not [a for a in actions if a["role"] == "builder" and a["action"] != "EmitEvent"]
        assert runner.runtime.record("builder") is None
        assert status.agents["adversary"].state in {"Starting", "Active", "Idle"}
    finally:
        asyncio.run(runner.stop_everything())
    assert processes_under(tmp_path) == []


def test_a_shim_reports_the_configuration_error_it_refused_the_start_with(tmp_path: Path) -> None:
    token = secrets.token_urlsafe(32)
    (tmp_path / "token").write_text(token)
    (tmp_path / "kickoff").write_text("go")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "loopphase.cli", "shim", "--role", "builder", "--backend", "sim",
         "--workdir", str(tmp_path / "w"), "--kickoff-file", str(tmp_path / "kickoff"),
         "--continuation-text", "Continue.", "--host", "127.0.0.1", "--port", str(port),
         "--token-file", str(tmp_path / "token")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    async def ask() -> object:
        client = ShimClient(f"http://127.0.0.1:{port}", token, timeout=5)
        try:
            deadline = asyncio.get_running_loop().time() + 20
            while True:
                try:
                    state = await client.state()
                    if state.start_error is not None:
                        return state
                except Exception:
                    if asyncio.get_running_loop().time() > deadline:
                        raise
                await asyncio.sleep(0.1)
        finally:
            await client.close()

    try:
        state = asyncio.run(ask())
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert state.start_error == "backend sim needs --scenario"
    obs = to_observation("builder", state, None)
    assert obs.cannot_start == "backend sim needs --scenario"


def test_display_cuts_say_so_and_status_keeps_everything() -> None:
    long = "HTTP 400: backend sim needs --scenario " + "x" * 200
    assert clip(long, 90).endswith("…") and len(clip(long, 90)) == 90
    assert clip("short", 90) == "short"


def test_no_cut_without_an_ellipsis_in_the_sources() -> None:
    """Display code cuts through clip() only: no bare `[:N]` slice of a reason or message."""
    root = Path(__file__).resolve().parents[2] / "operator" / "loopphase"
    offenders = []
    for path in root.rglob("*.py"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for word in ("reason[:", "message[:", "excerpt[:", "detail[:", "error[:"):
                if word in line and "…" not in line:  # a cut that says so is fine
                    offenders.append(f"{path.relative_to(root)}:{number}: {line.strip()}")
    assert offenders == []


def test_validate_for_a_cluster_refuses_a_scenario_file(tmp_path: Path, capsys) -> None:
    (tmp_path / "b.yaml").write_text(GOOD_SCENARIO)
    spec = write_spec(tmp_path, {"backend": "sim", "simScenario": "b.yaml"}, url=str(seed_repo(tmp_path / "git")))
    assert validate_main([str(spec)]) == 0
    assert validate_main(["--cluster", str(spec)]) == 1
    err = capsys.readouterr().err
    assert "cannot start on a cluster" in err and "agents.builder.simScenario: names a file (b.yaml)" in err

"""Issue 12 (new-user trial), preflight messages: an env var set to the empty string was told
"export X"; a spec with no agents was told `backend claude needs the 'claude' command` though
the user never wrote claude; a relative repo.url was read from the current directory by the probe
(the clone disagreed); a failed clone said "git clone failed: git clone failed (exit 128)"."""

from __future__ import annotations

import asyncio
import types
from pathlib import Path

import yaml
from loopphase.git.errors import GitRemoteError
from loopphase.runner.specfile import load_spec
from loopphase.runtime.local import LocalRuntime

from tests.runner.test_examples import seed_repo
from tests.runner.test_preflight import GOOD_SCENARIO, only_tmux_and_git, validate  # noqa: F401

PHASES = [{"id": "phase-1", "plan": "plans/PHASE-1.md", "statusFile": "STATUS-phase-1.md"}]


def write(path: Path, spec: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"apiVersion": "loopphase.dev/v1alpha1", "kind": "LoopPhase",
                                    "metadata": {"name": "mine"}, "spec": spec}))
    return path


def test_an_empty_env_var_is_named_set_but_empty(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("LP_TRIAL_TOKEN", "")
    sim = {"backend": "sim", "simScenario": GOOD_SCENARIO,
           "env": [{"name": "LP_TRIAL_TOKEN", "secretKeyRef": {"name": "s", "key": "k"}}]}
    path = write(tmp_path / "lp.yaml", {"repo": {"url": str(seed_repo(tmp_path / "git"))},
                                        "phases": PHASES, "agents": {"builder": sim}})
    code, text = validate(path, capsys)
    assert code == 1
    assert "spec.agents.builder.env[0]: LP_TRIAL_TOKEN is set but empty" in text, text
    monkeypatch.setenv("LP_TRIAL_TOKEN", "v")
    assert validate(path, capsys)[0] == 0


def test_the_default_backend_is_named_as_the_default_with_every_role_and_the_sim_choice(
        tmp_path: Path, capsys, only_tmux_and_git: None) -> None:  # noqa: F811
    path = write(tmp_path / "lp.yaml", {"repo": {"url": "/nonexistent.git"}, "phases": PHASES})
    code, text = validate(path, capsys)
    assert code == 1
    assert ("spec.agents.builder.backend: no backend is set, so builder and adversary use the "
            "default, claude") in text, text
    assert "backend: sim" in text


def test_a_relative_repo_url_is_relative_to_the_spec_file(tmp_path: Path, capsys, monkeypatch) -> None:
    bare = seed_repo(tmp_path / "git")
    sim = {"backend": "sim", "simScenario": GOOD_SCENARIO}
    path = write(tmp_path / "loops" / "one" / "lp.yaml",
                 {"repo": {"url": "../../git/demo.git"}, "phases": PHASES, "agents": {"builder": sim}})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, text = validate(path, capsys)
    assert code == 0, text
    assert load_spec(path).spec.repo.url == str(bare.resolve())  # what the clones use too


def test_a_failed_clone_says_git_clone_failed_once(tmp_path: Path) -> None:
    bare = seed_repo(tmp_path / "git")
    sim = {"backend": "sim", "simScenario": GOOD_SCENARIO}
    spec = load_spec(write(tmp_path / "lp.yaml", {"repo": {"url": str(bare)}, "phases": PHASES,
                                                 "agents": {"builder": sim}})).spec
    fake = types.SimpleNamespace(spec=spec, _repo_refused=None)
    err = GitRemoteError("git clone failed (exit 128): fatal: could not create work tree dir")
    result = asyncio.run(LocalRuntime._clone_failed(fake, "builder", err))  # type: ignore[arg-type]
    assert not result.ok
    assert result.detail.count("git clone failed") == 1, result.detail

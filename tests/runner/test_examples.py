"""Every shipped example runs to Complete with `loopphase run` on this machine.

The repository is the one the examples' git server (manifests/examples/git-server.yaml) serves,
built here by running that manifest's own seed script into a temp dir; only repo.url is
changed (to the local bare repository). The real CLI runs in a subprocess, as a user runs it.

An example on real Claude Code (claude-two-phase.yaml) runs the pinned CLI (marker
``realcli``) against the scripted model endpoint (docs/real-clis.md) with a dummy API key, on
the script of tests/realcli/test_claude_loop.py: the builder's and adversary's own Bash tool
commits and pushes the claim, the PASS review and ``## DONE`` of each phase. Its prompts come
from a ConfigMap (configMapKeyRef), which exists only on a cluster; here they become inline
prompts with that ConfigMap's own text (manifests/examples/claude-prompts.yaml), and the
Secret-backed env (the API key) is given by the environment, as `loopphase run` expects.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from loopphase.modelserver.script import Script
from loopphase.modelserver.server import ModelServer

from tests.realcli.conftest import API_KEY, CLAUDE_ENV, LOGIN_VARS, TOOLS_BIN, require_cli
from tests.realcli.loop_script import git_log
from tests.realcli.loop_script import script as claude_loop_script
from tests.runner.state_dir_docs import undocumented
from tests.runner.test_local_e2e import processes_under

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "manifests" / "examples"
SCRIPTED = {"sim", "claude"}  # backends this test can run here
RUN_TIMEOUT = 240  # seconds; a run takes 15-45 s here (claude 15 s, sim 45 s), more under load


def manifest_docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def loopphase_examples() -> list[Path]:
    return [p for p in sorted(EXAMPLES.glob("*.yaml"))
            if any(d.get("kind") == "LoopPhase" for d in manifest_docs(p))]


def backends(manifest: dict[str, Any]) -> set[str]:
    return {a.get("backend", "claude") for a in manifest["spec"].get("agents", {}).values() if a}


def example_param(path: Path) -> Any:
    """One example as a test parameter; examples on a real CLI carry the ``realcli`` marker."""
    manifest = next(d for d in manifest_docs(path) if d.get("kind") == "LoopPhase")
    marks = [pytest.mark.realcli] if backends(manifest) - {"sim"} else []
    return pytest.param(path, marks=marks, id=path.stem)


def seed_repo(root: Path) -> Path:
    """Run the git server's seed script with GIT_ROOT=root; returns the bare repository."""
    docs = list(yaml.safe_load_all((EXAMPLES / "git-server.yaml").read_text()))
    script = next(d for d in docs if d["kind"] == "ConfigMap")["data"]["seed.sh"]
    subprocess.run(["sh", "-c", script], check=True, timeout=60, capture_output=True,
                   env={**os.environ, "GIT_ROOT": str(root)})
    return root / "demo.git"


def config_maps() -> dict[str, dict[str, str]]:
    """name -> data of every ConfigMap shipped beside the examples."""
    return {d["metadata"]["name"]: d.get("data", {})
            for p in sorted(EXAMPLES.glob("*.yaml")) for d in manifest_docs(p)
            if d.get("kind") == "ConfigMap"}


def inline_config_map_prompts(manifest: dict[str, Any]) -> dict[str, str]:
    """Replace each prompt.configMapKeyRef with prompt.inline holding that shipped ConfigMap
    key's text (a ConfigMap exists only on a cluster); returns role -> prompt text."""
    maps, prompts = config_maps(), {}
    for role, agent in manifest["spec"]["agents"].items():
        ref = ((agent or {}).get("prompt") or {}).get("configMapKeyRef")
        if ref is None:
            continue
        data = maps.get(ref["name"], {})
        assert ref["key"] in data, (f"agents.{role}.prompt.configMapKeyRef names ConfigMap "
                                    f"{ref['name']} key {ref['key']}, which no file in "
                                    f"{EXAMPLES.relative_to(ROOT)} ships")
        agent["prompt"] = {"inline": data[ref["key"]]}
        prompts[role] = data[ref["key"]]
    return prompts


def run_cli(*argv: str, timeout: float, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "loopphase.cli", *argv], capture_output=True,
                          text=True, timeout=timeout, env=env)


def claude_env(server: ModelServer, home: Path) -> dict[str, str]:
    """The realcli tests' environment: the scripted endpoint, a dummy API key (what the
    example's Secret holds on a cluster), telemetry and update checks off, a throwaway HOME."""
    env = {k: v for k, v in os.environ.items() if k not in LOGIN_VARS}
    env.update(CLAUDE_ENV)
    env.update({"ANTHROPIC_BASE_URL": server.url, "ANTHROPIC_API_KEY": API_KEY, "HOME": str(home),
                "PATH": os.pathsep.join([str(TOOLS_BIN), os.environ.get("PATH", "")])})
    return env


def user_texts(dump_dir: Path, agent: str) -> set[str]:
    """Every user text block the model server received from ``agent`` (whole, not excerpts)."""
    texts: set[str] = set()
    for path in dump_dir.glob(f"*-{agent}-anthropic.json"):
        for message in json.loads(path.read_text())["body"].get("messages", []):
            content = message.get("content")
            blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
            texts.update(b["text"] for b in blocks if message.get("role") == "user"
                         and b.get("type") == "text")
    return texts


def test_the_examples_are_found() -> None:
    names = {p.name for p in loopphase_examples()}
    assert {"sim-two-phase.yaml", "claude-two-phase.yaml"} <= names


@pytest.mark.parametrize("example", [example_param(p) for p in loopphase_examples()])
def test_every_shipped_example_runs_to_complete_locally(example: Path, tmp_path: Path) -> None:
    manifest = yaml.safe_load(example.read_text())
    used = backends(manifest)
    assert used <= SCRIPTED, (f"{example.name} runs {', '.join(sorted(used - SCRIPTED))} agents: "
                              "give this test a scripted run for that backend")
    real = "claude" in used
    if real:
        require_cli("claude")
    bare = seed_repo(tmp_path / "git")
    manifest["spec"]["repo"]["url"] = str(bare)
    prompts = inline_config_map_prompts(manifest)
    spec = tmp_path / example.name
    spec.write_text(yaml.safe_dump(manifest, sort_keys=False))
    name = manifest["metadata"]["name"]
    phases = [p["id"] for p in manifest["spec"]["phases"]]
    dumps = tmp_path / "model-requests"
    with ModelServer(Script({}), dump_dir=dumps) if real else contextlib.nullcontext() as server:
        env = None
        if server is not None:
            home = tmp_path / "home"
            home.mkdir()
            env = claude_env(server, home)
            work = tmp_path / ".loopphase" / name / "work"  # `loopphase run`'s default state dir
            server.load(claude_loop_script(phases, {r: work / r for r in ("builder", "adversary")}))
        checked = run_cli("validate", str(spec), timeout=30, env=env)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        try:
            try:
                done = run_cli("run", str(spec), timeout=RUN_TIMEOUT, env=env)
            except subprocess.TimeoutExpired:
                pytest.fail(f"`loopphase run` did not reach Complete within {RUN_TIMEOUT}s; pushed: "
                            f"{git_log(bare)}; logs in {tmp_path / '.loopphase' / name / 'logs'}")
            assert done.returncode == 0, done.stdout + done.stderr
            assert f"{name}: Complete" in done.stdout, done.stdout + done.stderr
        finally:
            run_cli("run", str(spec), "--stop", timeout=60, env=env)
        # Everything the finished run left is in docs/local.md's state directory table.
        assert undocumented(tmp_path / ".loopphase" / name) == []
        state_dir = manifest["spec"]["repo"].get("stateDir", "machine-docs")
        for phase in manifest["spec"]["phases"]:
            status = subprocess.run(
                ["git", "--git-dir", str(bare), "show", f"main:{state_dir}/{phase['statusFile']}"],
                capture_output=True, text=True, check=True, timeout=30).stdout
            assert "## DONE" in status, (phase["id"], status)
        log = git_log(bare)
        if not real:
            assert sum(s.endswith("|done: phase complete") for s in log) == len(phases), log
        else:
            expected = []
            for phase in phases:
                expected += [f"loopphase-builder|claim({phase}-gate): {phase} implemented",
                             f"loopphase-adversary|review({phase}-gate): PASS",
                             f"loopphase-builder|done({phase}): all DoD items verified"]
            assert [s for s in log if not s.startswith("seed|")] == expected, log
            for role, text in prompts.items():  # each phase's kickoff carried the ConfigMap's text
                kickoffs = {t for t in user_texts(dumps, f"loop-{role}") if text.strip() in t}
                for phase in phases:
                    assert any(f"PHASE {phase} " in t for t in kickoffs), (role, phase, kickoffs)
    assert processes_under(tmp_path) == []

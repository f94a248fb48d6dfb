"""Fault (issue 12, second trial): `loopphase run` silently ignored `agents.<role>.env`. A
Secret exists only on a cluster; locally each variable comes from the runner's environment,
which the agent inherits. Now a variable that is not set is refused (validate, run, and
NeedsAttention(CannotStart) during a run) naming the field and the fix, and one that is set
reaches the agent process (real run, the sim agent's /proc environment)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
from loopphase.runtime.local import marked_processes, run_id

from tests.runner.test_examples import seed_repo
from tests.runner.test_local_e2e import processes_under
from tests.runner.test_preflight import GOOD_SCENARIO, write_spec

NAME = "LOOPPHASE_TEST_AGENT_KEY"
SIM_WITH_ENV = {"backend": "sim", "simScenario": "phases:\n  default:\n    - work: {seconds: 60}\n",
                "env": [{"name": NAME, "secretKeyRef": {"name": "agent-keys", "key": "apiKey"}}]}


def cli(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "loopphase.cli", *argv], capture_output=True,
                          text=True, timeout=180, env=env)


def builder_sim_agent(rid: str, timeout: float = 60.0) -> psutil.Process:
    """The builder's sim agent process of run ``rid`` (found by its marker), polled until it
    appears or ``timeout`` seconds pass (AssertionError)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in marked_processes(rid, "builder"):
            try:
                if "loopphase.sim.agent" in proc.cmdline():
                    return proc
            except psutil.Error:
                continue
        time.sleep(0.2)  # polling for the agent process, bounded by the deadline
    raise AssertionError("the builder's sim agent never started")


def without_var() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != NAME}


def test_an_env_variable_not_set_here_is_refused_naming_the_field(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, SIM_WITH_ENV, {"backend": "sim", "simScenario": GOOD_SCENARIO},
                      url=str(seed_repo(tmp_path / "git")))
    checked = cli("validate", str(spec), env=without_var())
    assert checked.returncode == 1
    assert (f"spec.agents.builder.env[0]: {NAME} comes from Secret agent-keys (key apiKey) on a "
            f"cluster") in checked.stderr, checked.stderr
    assert f"export {NAME}" in checked.stderr
    ran = cli("run", str(spec), env=without_var())
    assert ran.returncode == 2 and "spec.agents.builder.env[0]" in ran.stderr
    assert "nothing was started" in ran.stderr


def test_an_env_variable_set_here_reaches_the_agent_process(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, SIM_WITH_ENV, {"backend": "sim", "simScenario": GOOD_SCENARIO},
                      url=str(seed_repo(tmp_path / "git")))
    env = {**without_var(), NAME: "value-for-the-builder"}
    assert cli("validate", str(spec), env=env).returncode == 0
    rid = run_id(tmp_path / ".loopphase" / "mine")
    try:
        ran = cli("run", str(spec), "--max-ticks", "4", env=env)
        assert ran.returncode == 0, ran.stdout + ran.stderr
        agent = builder_sim_agent(rid)
        assert agent.environ().get(NAME) == "value-for-the-builder"
    finally:
        cli("run", str(spec), "--stop", env=env)
    assert processes_under(tmp_path) == []


def test_a_notify_url_from_the_environment_never_reaches_the_agents(tmp_path: Path) -> None:
    """`notify.webhooks[].urlEnv` names a variable of the runner's environment holding a
    webhook URL with its token; the agents inherit that environment, so it is withheld from
    them (a trial read it in the sim agent's /proc environment)."""
    import yaml

    hook_var = "LOOPPHASE_TEST_HOOK_URL"
    spec = write_spec(tmp_path, SIM_WITH_ENV, {"backend": "sim", "simScenario": GOOD_SCENARIO},
                      url=str(seed_repo(tmp_path / "git")))
    manifest = yaml.safe_load(spec.read_text())
    manifest["spec"]["notify"] = {"webhooks": [{"name": "team", "urlEnv": hook_var}]}
    spec.write_text(yaml.safe_dump(manifest, sort_keys=False))
    env = {**without_var(), NAME: "value-for-the-builder",
           hook_var: "http://127.0.0.1:9/hook?token=HOOKSECRET"}
    rid = run_id(tmp_path / ".loopphase" / "mine")
    try:
        ran = cli("run", str(spec), "--max-ticks", "4", env=env)
        assert ran.returncode == 0, ran.stdout + ran.stderr
        agent = builder_sim_agent(rid)
        seen = agent.environ()
        assert seen.get(NAME) == "value-for-the-builder"  # the agent's own env still arrives
        assert hook_var not in seen
    finally:
        cli("run", str(spec), "--stop", env=env)
    assert processes_under(tmp_path) == []

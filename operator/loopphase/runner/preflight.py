"""What `loopphase validate` and `loopphase run` can check on this machine before anything starts.

The spec model checks what holds everywhere (fields, patterns, inline scenarios); this module
checks what only the machine that runs the agents can: the files a spec names exist (scenario
files, prompt files) and parse, and the programs the agents need are on PATH. Each problem names
the spec field and the fix. The local runtime asks again every tick (``role_problem``), so a
spec edited or a CLI uninstalled mid-run becomes NeedsAttention(CannotStart), not a heal ladder.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from loopphase.api.notify import WebhookSpec
from loopphase.api.spec import AgentSpec, LoopPhaseSpec, Role, agent_field
from loopphase.git.localrepo import local_repo_problems
from loopphase.git.probe import local_path, probe_branch
from loopphase.notify.deliver import webhook_field
from loopphase.notify.urls import cluster_url_problem, local_url_problem
from loopphase.sim.scenario import ScenarioError, load_scenario, scenario_source, uncovered_phases

# The program each backend runs inside tmux (sim runs this Python, always present).
BACKEND_PROGRAMS: dict[str, str] = {"claude": "claude", "opencode": "opencode"}
INSTALL_HINTS: dict[str, str] = {
    "claude": "install Claude Code (npm install -g @anthropic-ai/claude-code)",
    "opencode": "install opencode (npm install -g opencode-ai)",
    "tmux": "install tmux (apt-get install tmux)",
    "git": "install git (apt-get install git)",
}


@dataclass(frozen=True)
class Problem:
    """One thing that stops a start: the spec field (or program) and what to do."""

    field: str
    message: str
    lasting: bool = True  # False: may pass by itself (the network); a run starts anyway

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def scenario_file(spec_dir: Path, text: str) -> Path | None:
    """The scenario file a ``simScenario`` names (None when it is inline)."""
    kind, value = scenario_source(text)
    return spec_dir / value if kind == "path" else None  # type: ignore[operator]


def agent_problems(spec: LoopPhaseSpec, role: Role, spec_dir: Path) -> list[Problem]:
    """Problems with one role's agent on this machine (empty when it can start)."""
    agent: AgentSpec = spec.agent(role)
    where = agent_field(spec, role)
    problems: list[Problem] = []
    program = BACKEND_PROGRAMS.get(agent.backend)
    if program is not None and shutil.which(program) is None:
        users = [r for r in spec.roles() if agent_field(spec, r) == where]
        roles = " and ".join(users)
        if "backend" in agent.model_fields_set:
            problems.append(Problem(
                f"{where}.backend",
                f"backend {agent.backend} (used by {roles}) needs the {program!r} command, which "
                f"is not on PATH: {INSTALL_HINTS[program]}, or choose another backend",
            ))
        else:
            problems.append(Problem(
                f"{where}.backend",
                f"no backend is set, so {roles} use the default, {agent.backend}, which needs the "
                f"{program!r} command (not on PATH): {INSTALL_HINTS[program]}; or set "
                f"backend: sim under {where} (a simulated agent playing spec'd steps, no account "
                "needed; it then needs simScenario) or backend: opencode",
            ))
    if agent.backend == "sim" and agent.sim_scenario is not None:
        try:
            path = scenario_file(spec_dir, agent.sim_scenario)
            if path is not None:
                if not path.is_file():
                    raise ScenarioError(
                        f"scenario file {path} does not exist (a one-line simScenario is a path "
                        "relative to the spec file; inline scenarios are YAML mappings with 'phases')"
                    )
                gap = uncovered_phases(load_scenario(path), [p.id for p in spec.phases])
                if gap is not None:
                    raise ScenarioError(f"{path}: {gap}")
        except ScenarioError as err:
            problems.append(Problem(f"{where}.simScenario", str(err)))
    problems += env_problems(agent, where)
    prompt = agent.prompt
    if prompt is not None and prompt.config_map_key_ref is not None:
        problems.append(Problem(
            f"{where}.prompt.configMapKeyRef",
            "a ConfigMap exists only on a cluster; for `loopphase run` use prompt.inline or prompt.file",
        ))
    if prompt is not None and prompt.file is not None:
        path = spec_dir / prompt.file
        try:
            path.read_text(encoding="utf-8")
        except FileNotFoundError:
            problems.append(Problem(f"{where}.prompt.file", f"{path} does not exist (paths are relative to the spec file)"))
        except (OSError, UnicodeDecodeError) as err:
            problems.append(Problem(f"{where}.prompt.file", f"cannot read {path} as UTF-8 text: {err}"))
    return problems


def env_problems(agent: AgentSpec, where: str) -> list[Problem]:
    """``agents.<role>.env`` on this machine: a Secret exists only on a cluster, so each
    variable must be set in the environment of `loopphase run`, which the agent inherits
    (shim -> tmux server -> agent). A missing one is refused, never silently dropped."""
    problems = []
    for index, item in enumerate(agent.env):
        if os.environ.get(item.name):
            continue
        ref = item.secret_key_ref
        if item.name in os.environ:
            problems.append(Problem(
                f"{where}.env[{index}]",
                f"{item.name} is set but empty in the shell that runs `loopphase run`: give it "
                f"its value (export {item.name}=<the value of Secret {ref.name}, key {ref.key}>)",
            ))
            continue
        problems.append(Problem(
            f"{where}.env[{index}]",
            f"{item.name} comes from Secret {ref.name} (key {ref.key}) on a cluster; a Secret "
            f"cannot be read on this machine: export {item.name} in the shell that runs "
            "`loopphase run` (its agents inherit its environment)",
        ))
    return problems


def role_problem(spec: LoopPhaseSpec, role: Role, spec_dir: Path) -> str | None:
    """The whole reason ``role`` cannot start here, or None (what the runtime reports)."""
    problems = agent_problems(spec, role, spec_dir)
    return "; ".join(str(p) for p in problems) if problems else None


def repo_problem(spec: LoopPhaseSpec) -> Problem | None:
    """Why the agents' clone of ``spec.repo`` would fail from this machine now, or None: the
    repository must answer ``git ls-remote`` (with a timeout) and have the branch (the runner
    clones it; it never creates it). ``lasting`` is False for network trouble."""
    probe = probe_branch(spec.repo.url, spec.repo.branch)
    if probe.field is None:
        return None
    return Problem(probe.field, probe.message, lasting=probe.lasting)


def local_repo_checks(spec: LoopPhaseSpec) -> list[Problem]:
    """A repository on this machine is read directly (cheap): can the agents push to it, and
    is every phase's plan on the branch? A remote URL is not judged here (no claim made)."""
    path = local_path(spec.repo.url)
    if path is None:
        return []
    plans = [phase.plan for phase in spec.phases]
    return [Problem(field, message) for field, message in local_repo_problems(path, spec.repo.branch, plans)]


def local_problems(spec: LoopPhaseSpec, spec_dir: Path) -> list[Problem]:
    """Everything that stops this spec from starting on this machine, each role once (the
    repository is asked with ``git ls-remote``: this may take up to the probe's timeout)."""
    problems: list[Problem] = []
    for program in ("tmux", "git"):
        if shutil.which(program) is None:
            problems.append(Problem(program, f"`loopphase run` needs {program} on PATH: {INSTALL_HINTS[program]}"))
    if shutil.which("git") is not None:
        repo = repo_problem(spec)
        if repo is not None:
            problems.append(repo)
        else:
            problems += local_repo_checks(spec)
    seen: set[str] = set()
    for role in spec.roles():
        for problem in agent_problems(spec, role, spec_dir):
            if str(problem) not in seen:
                seen.add(str(problem))
                problems.append(problem)
    problems += notify_problems(spec, lambda hook, field: local_url_problem(hook, field, spec_dir))
    return problems


LABEL_VALUE_MAX = 63  # a Kubernetes label value's limit


def notify_problems(spec: LoopPhaseSpec, check: Callable[[WebhookSpec, str], tuple[str, str] | None]
                    ) -> list[Problem]:
    """``check`` applied to every ``spec.notify.webhooks[i]`` (each would fail every delivery)."""
    hooks = spec.notify.webhooks if spec.notify is not None else []
    found = (check(hook, webhook_field(index)) for index, hook in enumerate(hooks))
    return [Problem(field, message) for field, message in (f for f in found if f is not None)]


def cluster_problems(spec: LoopPhaseSpec, name: str | None = None) -> list[Problem]:
    """What the operator could never start: a repository given as a local path or file:// URL
    (the agent pods clone it, and they have no such directory), a sim scenario given as a file
    path (a cluster has only what the spec holds).

    The operator itself accepts a local repository: it reads the remote from its own
    filesystem, which serves an operator run outside a cluster (the tests do) or a volume
    mounted at that path; `validate --cluster` refuses it because the pods LoopPhase creates
    mount none."""
    problems: list[Problem] = []
    if name is not None and len(name) > LABEL_VALUE_MAX:
        problems.append(Problem(
            "metadata.name",
            f"{name!r} is {len(name)} characters; on a cluster every object of the loop carries "
            f"it in the label loopphase.dev/name, and a label value holds at most "
            f"{LABEL_VALUE_MAX}: the label would be a shortened, hashed form, so selecting the "
            f"loop's pods by its name (kubectl get pods -l loopphase.dev/name=...) finds none. Use a "
            f"name of at most {LABEL_VALUE_MAX} characters",
        ))
    if local_path(spec.repo.url) is not None:
        problems.append(Problem(
            "spec.repo.url",
            f"{spec.repo.url} is a path on this machine; the agent pods clone the repository "
            "and cannot reach it: use a git server's https:// or ssh URL (docs/kubernetes.md "
            "gives an in-cluster one), or `loopphase run` to run the loop on this machine",
        ))
    for role in spec.roles():
        agent = spec.agent(role)
        if agent.backend != "sim" or agent.sim_scenario is None:
            continue
        try:
            path = scenario_file(Path("."), agent.sim_scenario)
        except ScenarioError:
            continue  # reported by the spec's own validation
        problem = Problem(f"{agent_field(spec, role)}.simScenario",
                          f"names a file ({path}); on a cluster give the scenario inline "
                          "(YAML text that is a mapping with 'phases')")
        if path is not None and str(problem) not in {str(p) for p in problems}:
            problems.append(problem)
    problems += notify_problems(spec, cluster_url_problem)
    return problems

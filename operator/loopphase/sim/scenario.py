"""Scenario files for ``loopphase sim-agent``: parse and validate.

A scenario is YAML with one key, ``phases``, mapping a phase id (or ``default``) to a list of
steps. Each step is a one-key mapping ``{kind: {params}}``; see ``loopphase.sim.agent`` for the
full list of kinds and their parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from loopphase.api.yamlfile import load_yaml

STEP_KINDS: frozenset[str] = frozenset(
    {
        "work",
        "say",
        "git",
        "wait_input",
        "banner",
        "soft_warning",
        "fatal",
        "idle",
        "wait_until",
        "write_file",
        "delete_file",
        "append_done",
        "exit",
    }
)

# Steps after which a restart must not redo the step (it wedges or blocks the agent on purpose).
DISRUPTIVE_KINDS: frozenset[str] = frozenset({"fatal", "idle", "banner", "wait_until", "exit"})


class ScenarioError(ValueError):
    """The scenario file is malformed; the message names the phase and step."""


@dataclass(frozen=True)
class Step:
    kind: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Scenario:
    phases: dict[str, tuple[Step, ...]]

    def steps_for(self, phase: str | None) -> tuple[Step, ...]:
        if phase and phase in self.phases:
            return self.phases[phase]
        return self.phases.get("default", ())


def parse_step(raw: object, where: str) -> Step:
    if isinstance(raw, str):
        raw = {raw: {}}
    if not isinstance(raw, dict) or len(raw) != 1:
        raise ScenarioError(f"{where}: a step is a mapping with exactly one key (the step kind)")
    (kind, params), = raw.items()
    if kind not in STEP_KINDS:
        raise ScenarioError(f"{where}: unknown step kind {kind!r} (known: {sorted(STEP_KINDS)})")
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise ScenarioError(f"{where}: parameters of {kind!r} must be a mapping")
    return Step(kind=str(kind), params=dict(params))


def parse_scenario(data: object) -> Scenario:
    if not isinstance(data, dict) or not isinstance(data.get("phases"), dict):
        raise ScenarioError("scenario: top level must be a mapping with a 'phases' mapping")
    phases: dict[str, tuple[Step, ...]] = {}
    for phase_id, steps in data["phases"].items():
        if steps is None:
            steps = []
        if not isinstance(steps, list):
            raise ScenarioError(f"phases.{phase_id}: must be a list of steps")
        phases[str(phase_id)] = tuple(
            parse_step(raw, f"phases.{phase_id}[{i}]") for i, raw in enumerate(steps)
        )
    return Scenario(phases=phases)


def load_scenario(path: str | Path) -> Scenario:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"cannot read scenario {path}: {exc}") from exc
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        raise ScenarioError(f"scenario {path} is not valid YAML: {exc}") from exc
    return parse_scenario(data)


ScenarioSource = tuple[Literal["inline"], Scenario] | tuple[Literal["path"], str]


def scenario_source(text: str) -> ScenarioSource:
    """How a spec's ``simScenario`` text is read (one rule for validate, run and the cluster).

    Text whose YAML is a mapping is the scenario itself (``inline``, parsed and checked here);
    anything else must be one line, a path to a scenario file (``path``; relative to the spec
    file, ``loopphase run`` only). Never falls back from one to the other: a path that does not
    exist is an error, not inline YAML. Raises ``ScenarioError`` naming the problem.
    """
    stripped = text.strip()
    if not stripped:
        raise ScenarioError("empty: give inline scenario YAML (a mapping with 'phases') or a path")
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        if "\n" in stripped:
            raise ScenarioError(f"inline scenario is not valid YAML: {exc}") from exc
        data = None
    if isinstance(data, dict):
        return "inline", parse_scenario(data)
    if "\n" in stripped:
        raise ScenarioError(
            "multi-line text that is not a YAML mapping: inline scenarios are a mapping with "
            "'phases'; a path is one line"
        )
    return "path", stripped

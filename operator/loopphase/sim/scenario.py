"""Scenario files for ``loopphase sim-agent``: parse and validate.

A scenario is YAML with one key, ``phases``, mapping a phase id (or ``default``) to a list of
steps. Each step is a one-key mapping ``{kind: {params}}``; see ``loopphase.sim.agent`` for the
full list of kinds and their parameters.
"""

from __future__ import annotations

import difflib
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


# Each kind's parameters: name -> (accepted Python types, what it is, an example). Checked at
# validate time so a typo (``txt`` for ``text``) or a wrong type (``seconds: five``) is named
# before a run instead of failing, or doing nothing, inside the simulated agent.
_NUM = (int, float)
_COMMIT = {"commit": ((str,), "a commit message", '"claim(gate-1): done"'),
           "push": ((bool,), "true or false", "true")}
STEP_PARAMS: dict[str, dict[str, tuple[tuple[type, ...], str, str]]] = {
    "work": {"seconds": (_NUM, "a number of seconds", "5")},
    "say": {"text": ((str,), "the text to print", '"reading the plan"')},
    "git": {"files": ((dict,), "a mapping of path to content", '{"src/w.txt": "x"}'),
            "delete": ((list,), "a list of paths", '["old.txt"]'), **_COMMIT},
    "wait_input": {"match": ((str,), "a regular expression", '"CLAIM"'),
                   "timeout": (_NUM, "a number of seconds", "120")},
    "banner": {"style": ((str,), "a banner style", "five_hour"),
               "reset_in": (_NUM, "a number of seconds", "60"),
               "tz": ((str,), "an IANA zone", "UTC"),
               "menu": ((bool,), "true or false", "false"),
               "lift_after": (_NUM, "a number of seconds", "2")},
    "soft_warning": {"reset_in": (_NUM, "a number of seconds", "3600"),
                     "tz": ((str,), "an IANA zone", "UTC")},
    "fatal": {},
    "idle": {"seconds": (_NUM, "a number of seconds", "600")},
    "wait_until": {"seconds": (_NUM, "a number of seconds", "30")},
    "write_file": {"path": ((str,), "a path in the repository", "machine-docs/ADVERSARY-INBOX.md"),
                   "content": ((str,), "the file's text", '"..."'), **_COMMIT},
    "delete_file": {"path": ((str,), "a path in the repository", "machine-docs/BUILDER-INBOX.md"),
                    **_COMMIT},
    "append_done": {"file": ((str,), "a status file name", "STATUS-gate-1.md"),
                    "text": ((str,), "the marker line", '"## DONE"'), **_COMMIT},
    "exit": {"code": ((int,), "an exit code (integer)", "0")},
}
REQUIRED_PARAMS: dict[str, tuple[str, ...]] = {"write_file": ("path",), "delete_file": ("path",)}


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
    check_params(str(kind), params, f"{where}.{kind}")
    return Step(kind=str(kind), params=dict(params))


def check_params(kind: str, params: dict[Any, Any], where: str) -> None:
    """Each parameter of a ``kind`` step is known and of its type; required ones are given.
    Raises ``ScenarioError`` naming ``where.<param>``, what is expected and an example."""
    known = STEP_PARAMS[kind]
    for name, value in params.items():
        if name not in known:
            close = difflib.get_close_matches(str(name), list(known), n=2, cutoff=0.5)
            hint = (f"did you mean {' or '.join(close)}?" if close
                    else f"{kind} takes {', '.join(known) or 'no parameters'}")
            raise ScenarioError(f"{where}.{name}: unknown parameter of {kind!r}; {hint}")
        types_, what, example = known[name]
        if isinstance(value, bool) and bool not in types_ or not isinstance(value, types_):
            raise ScenarioError(
                f"{where}.{name}: expected {what} (e.g. {name}: {example}), got {value!r}")
    for name in REQUIRED_PARAMS.get(kind, ()):
        if name not in params:
            raise ScenarioError(f"{where}: {kind!r} needs {name} (e.g. {name}: {known[name][2]})")
    if kind == "banner" and "style" in params:
        from loopphase.sim.banners import BANNER_STYLES

        if params["style"] not in BANNER_STYLES:
            raise ScenarioError(f"{where}.style: unknown banner style {params['style']!r} "
                                f"(known: {', '.join(BANNER_STYLES)})")


def uncovered_phases(scenario: Scenario, phase_ids: list[str]) -> str | None:
    """Why the scenario would do nothing in every phase of the spec (no ``default`` list and no
    key naming one of ``phase_ids``), or None. A scenario covering only some phases is allowed
    (tests leave a phase idle on purpose)."""
    if "default" in scenario.phases or any(p in scenario.phases for p in phase_ids):
        return None
    keys = ", ".join(f"phases.{k}" for k in scenario.phases) or "no phase keys"
    return (f"no steps for any phase of spec.phases ({', '.join(phase_ids)}); the scenario has "
            f"{keys} and no 'default': the simulated agent would do nothing. Add a 'default:' "
            "list of steps, or key the lists by the spec's phase ids")


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

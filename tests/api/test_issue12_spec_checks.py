"""Issue 12 (new-user trial): specs that cannot work were called valid. Two phases sharing a
statusFile (the second DONE at once at the first's commit), sim scenario steps with a misspelt
or mistyped argument (``say: {txt: ...}`` printed nothing, ``work: {seconds: five}`` failed at
run time), and a scenario whose only key names no phase (the agent did nothing)."""

from __future__ import annotations

from typing import Any

import pytest
from loopphase.runner.specfile import SpecFileError, parse_manifest

from tests.api.test_field_paths import BASE, PATH_RE, PHASE, lines_of


def sim(scenario: str) -> dict[str, Any]:
    return {"agents": {"builder": {"backend": "sim", "simScenario": scenario}}}


CASES = [
    ({"phases": [PHASE, {**PHASE, "id": "p2"}]}, "spec.phases[1].statusFile",
     "same as spec.phases[0].statusFile"),
    ({"phases": [PHASE, {**PHASE, "id": "p2", "statusFile": "/S1.md/"[1:]}]},
     "spec.phases[1].statusFile", "give each phase its own status file"),
    (sim("phases:\n  default:\n    - work: {seconds: five}\n"), "spec.agents.builder.simScenario",
     "phases.default[0].work.seconds: expected a number of seconds (e.g. seconds: 5), got 'five'"),
    (sim("phases:\n  default:\n    - say: {txt: hello}\n"), "spec.agents.builder.simScenario",
     "phases.default[0].say.txt: unknown parameter of 'say'; did you mean text?"),
    (sim("phases:\n  default:\n    - exit: {code: true}\n"), "spec.agents.builder.simScenario",
     "exit.code: expected an exit code"),
    (sim("phases:\n  default:\n    - write_file: {content: x}\n"), "spec.agents.builder.simScenario",
     "'write_file' needs path"),
    (sim("phases:\n  default:\n    - banner: {style: five_hours}\n"), "spec.agents.builder.simScenario",
     "unknown banner style 'five_hours'"),
    (sim("phases:\n  phase-3:\n    - work: {seconds: 1}\n"), "spec.agents.builder.simScenario",
     "no steps for any phase of spec.phases (p1); the scenario has phases.phase-3 and no 'default'"),
]


@pytest.mark.parametrize(("extra", "path", "words"), CASES)
def test_validate_names_the_field_and_the_fix(extra: dict[str, Any], path: str, words: str) -> None:
    with pytest.raises(SpecFileError) as info:
        parse_manifest({"apiVersion": "loopphase.dev/v1alpha1", "kind": "LoopPhase",
                        "metadata": {"name": "x"}, "spec": {**BASE, **extra}}, "x.yaml")
    found = lines_of(str(info.value))
    assert all(PATH_RE.match(where) for where, _ in found), found
    assert any(where == path and words in message for where, message in found), found


@pytest.mark.parametrize("scenario", [
    "phases:\n  default:\n    - work: {seconds: 2.5}\n    - say: {text: hi}\n",
    "phases:\n  p1:\n    - git: {commit: 'claim(g): x', files: {a.txt: x}, push: true}\n  other: []\n",
    "phases:\n  default:\n    - banner: {style: five_hour, reset_in: 60, tz: UTC, menu: false, lift_after: 2}\n",
])
def test_correct_scenarios_still_pass(scenario: str) -> None:
    parse_manifest({"apiVersion": "loopphase.dev/v1alpha1", "kind": "LoopPhase",
                    "metadata": {"name": "x"}, "spec": {**BASE, **sim(scenario)}}, "x.yaml")

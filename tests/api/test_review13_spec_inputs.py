"""Review of issue 13 (hardening): spec inputs that still gave a traceback instead of a
field-named error, through ``LoopPhaseSpec`` and the real ``loopphase validate`` CLI.

Before the fix: ``timeZone: America`` raised IsADirectoryError and a 300-character zone
OSError (ENAMETOOLONG) out of zoneinfo; ``memory: NaN`` raised decimal.InvalidOperation
(``Infinity`` passed, Kubernetes refuses it); a YAML document nested a few hundred levels deep
(in the spec file or an inline ``simScenario``) raised RecursionError, after a minute at 5,000
levels.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from loopphase.api.errors import format_errors
from loopphase.api.spec import LoopPhaseSpec
from loopphase.api.yamlfile import load_yaml
from pydantic import ValidationError
from yaml import YAMLError

BASE: dict[str, Any] = {"repo": {"url": "https://example.invalid/r.git"},
                        "phases": [{"id": "p1", "plan": "p1.md", "statusFile": "S1.md"}]}
SIM = {"builder": {"backend": "sim", "simScenario": "phases: {}"}}


def field_error(doc: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as info:
        LoopPhaseSpec.model_validate(doc)
    return " | ".join(format_errors(info.value, "spec", LoopPhaseSpec))  # what users are shown


@pytest.mark.parametrize("zone", ["America", "Etc", "a" * 300])
def test_time_zone_that_is_a_directory_or_too_long_is_a_field_error(zone: str) -> None:
    assert "timeZone" in field_error({**BASE, "timeZone": zone})


@pytest.mark.parametrize("amount", ["NaN", "sNaN", "Infinity", "-Infinity"])
def test_non_finite_quantity_is_a_field_error(amount: str) -> None:
    doc = {**BASE, "agents": {"builder": {**SIM["builder"],
                                          "resources": {"limits": {"memory": amount}}}}}
    message = field_error(doc)
    assert "resources.limits.memory" in message and "not a Kubernetes quantity" in message


@pytest.mark.parametrize("depth", [600, 5000])
def test_deeply_nested_yaml_is_a_yaml_error_not_a_recursion_error(depth: int) -> None:
    with pytest.raises(YAMLError, match="nested deeper"):
        load_yaml("phases: " + "[" * depth + "]" * depth)


def test_deeply_nested_inline_scenario_is_a_field_error() -> None:
    doc = {**BASE, "agents": {"builder": {"backend": "sim",
                                          "simScenario": "phases:\n  p1: " + "[" * 3000 + "]" * 3000}}}
    assert "simScenario" in field_error(doc)


def test_ordinary_nesting_and_aliases_still_load() -> None:
    assert load_yaml("a: [1, {b: [[[2]]]}]\nc: &x {d: 1}\ne: *x") == {
        "a": [1, {"b": [[[2]]]}], "c": {"d": 1}, "e": {"d": 1}}


@pytest.mark.parametrize("body", [
    "repo: {url: 'https://example.invalid/r.git'}\nphases: " + "[" * 3000 + "]" * 3000 + "\n",
    "repo: {url: 'https://example.invalid/r.git'}\nphases: [{id: p1, plan: p1.md, "
    "statusFile: S1.md}]\ntimeZone: America\n",
    "repo: {url: 'https://example.invalid/r.git'}\nphases: [{id: p1, plan: p1.md, "
    "statusFile: S1.md}]\nagents: {builder: {backend: sim, simScenario: 'phases: {}', "
    "resources: {limits: {memory: NaN}}}}\n",
])
def test_validate_cli_answers_bad_specs_without_a_traceback(tmp_path: Path, body: str) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(body)
    done = subprocess.run([sys.executable, "-m", "loopphase.cli", "validate", str(path)],
                          capture_output=True, text=True, timeout=120)
    out = done.stdout + done.stderr
    assert done.returncode != 0
    assert "Traceback" not in out and "Error:" not in out.split("\n")[-2], out[-800:]
    assert "spec.yaml" in out


@pytest.mark.parametrize("account", ["\x1b[2Jteam", "team\u202eb", "team\x9b", "a" * 254])
def test_account_is_printable_and_bounded(account: str) -> None:
    """The account appears in the status of every LoopPhase it holds and "loopphase status"
    prints it raw: before the fix an ESC sequence or a bidi override passed."""
    doc = {**BASE, "agents": {"builder": {**SIM["builder"], "account": account}}}
    assert "agents.builder.account" in field_error(doc)

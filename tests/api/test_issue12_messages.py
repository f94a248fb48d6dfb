"""Issue 12 (new-user trial): messages without a fix. pydantic's raw texts ("Input should be
greater than or equal to 0.2" with no unit, "Input should be a valid string", "Field required"),
an unknown metadata field accepted silently, a metadata.name over the label limit passing
`validate --cluster`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from loopphase.api.validate_cli import main as validate_main
from loopphase.runner.specfile import SpecFileError, parse_manifest

from tests.api.test_field_paths import BASE, PHASE, lines_of


def problems(spec: dict[str, Any], metadata: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    with pytest.raises(SpecFileError) as info:
        parse_manifest({"apiVersion": "loopphase.dev/v1alpha1", "kind": "LoopPhase",
                        "metadata": metadata or {"name": "x"}, "spec": spec}, "x.yaml")
    text = str(info.value)
    assert "Input should" not in text and "Field required" not in text, text
    return lines_of(text) + [tuple(line.strip().partition(": ")[::2])  # metadata lines
                             for line in text.splitlines() if line.startswith("  metadata")]


@pytest.mark.parametrize(("extra", "path", "words"), [
    ({"timing": {"signalInterval": 0.1}}, "spec.timing.signalInterval",
     "must be at least 0.2 seconds, got 0.1 seconds (durations are seconds, or a string like '30s'"),
    ({"timing": {"stallIdle": "0s"}}, "spec.timing.stallIdle", "set it to at least 1s"),
    ({"phases": [{**PHASE, "plan": 3}]}, "spec.phases[0].plan", "expected a string such as"),
    ({"phases": [{"id": "p1", "plan": "p.md"}]}, "spec.phases[0].statusFile", "required: add statusFile"),
    ({"suspend": "maybe"}, "spec.suspend", "expected true or false, got 'maybe'"),
    ({"phases": [{**PHASE, "approval": "man"}]}, "spec.phases[0].approval",
     "must be one of 'auto' or 'manual', got 'man'"),
])
def test_pydantic_errors_get_the_unit_and_the_fix(extra: dict[str, Any], path: str, words: str) -> None:
    found = problems({**BASE, **extra})
    assert any(where == path and words in message for where, message in found), found


def test_an_unknown_metadata_field_gets_did_you_mean() -> None:
    found = problems(BASE, {"name": "x", "namespce": "team"})
    assert any(where == "metadata.namespce" and "unknown field; did you mean namespace" in message
               for where, message in found), found


def test_known_metadata_fields_are_accepted() -> None:
    parse_manifest({"apiVersion": "loopphase.dev/v1alpha1", "kind": "LoopPhase",
                    "metadata": {"name": "x", "namespace": "n", "labels": {"a": "b"},
                                 "annotations": {"c": "d"}}, "spec": BASE}, "x.yaml")


def test_validate_cluster_refuses_a_name_longer_than_a_label_value(tmp_path: Path, capsys) -> None:
    name = "a" * 64
    path = tmp_path / "lp.yaml"
    path.write_text(yaml.safe_dump({"apiVersion": "loopphase.dev/v1alpha1", "kind": "LoopPhase",
                                    "metadata": {"name": name}, "spec": BASE}))
    assert validate_main(["--cluster", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"metadata.name: '{name}' is 64 characters" in err and "at most 63" in err
    path.write_text(path.read_text().replace(name, "a" * 63))
    assert validate_main(["--cluster", str(path)]) == 0, capsys.readouterr().err

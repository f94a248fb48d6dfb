"""The LoopPhase API: validation messages, derived views, and a structural CRD schema."""

from __future__ import annotations

from typing import Any

import pytest
from loopphase.api.crd import crd_manifest
from loopphase.api.spec import LoopPhaseSpec
from pydantic import ValidationError

BASE: dict[str, Any] = {"repo": {"url": "https://example.invalid/r.git"},
                        "phases": [{"id": "p1", "plan": "p1.md", "statusFile": "S1.md"}]}


def spec(**extra: Any) -> LoopPhaseSpec:
    return LoopPhaseSpec.model_validate({**BASE, **extra})


@pytest.mark.parametrize(
    ("extra", "field", "hint"),
    [
        ({"phases": [{"id": "a", "plan": "p.md", "statusFile": "S.md"}] * 2}, "", "duplicate phase id"),
        ({"phases": [{"id": "Phase_1", "plan": "p.md", "statusFile": "S.md"}]}, "phases.0.id", "DNS label"),
        ({"phases": [{"id": "a", "plan": "/etc/passwd", "statusFile": "S.md"}]}, "phases.0.plan", "relative path"),
        ({"agents": {"builder": {"model": "sonnet; rm -rf /"}}}, "agents.builder.model", "no spaces"),
        ({"timing": {"stallIdle": "-5s"}}, "timing.stallIdle", "duration"),
        ({"timing": {"signalInterval": "2d"}}, "timing.signalInterval", "less than or equal"),
        ({"startAt": "nope"}, "", "not a phase id"),
        ({"texts": {"stallNudge": "print WAITING-UNTIL: 2026-01-01T00:00:00Z if waiting"}}, "", "waiting-until"),
        ({"agents": {"orchestrator": {"wakePrompt": "⠋ working"}}}, "", "wakePrompt"),
        ({"texts": {"continuation": "   "}}, "", "must not be empty"),
        ({"signalIntervall": 3}, "signalIntervall", "Extra inputs"),
        ({"agents": {"builder": {"backend": "opencode"}}}, "", "opencodeServer: required"),
    ],
)
def test_bad_input_names_the_field_and_the_fix(extra, field, hint):
    with pytest.raises(ValidationError) as info:
        spec(**extra)
    errors = info.value.errors()
    text = " | ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
    assert hint in text, text
    if field:
        assert any(".".join(map(str, e["loc"])) == field for e in errors), text


def test_durations_and_model_fallbacks():
    s = spec(timing={"signalInterval": "1.5m", "stallIdle": 90},
             agents={"builder": {"model": "opus"}},
             phases=[{"id": "p1", "plan": "p.md", "statusFile": "S.md", "models": {"adversary": "haiku"}},
                     {"id": "p2", "plan": "p.md", "statusFile": "S.md"}])
    assert s.timing.signal_interval == 90.0 and s.timing.stall_idle == 90.0
    assert s.model_for("adversary", 0) == "haiku"
    assert s.model_for("adversary", 1) == "opus"  # falls back to the builder's
    assert s.agent("adversary") is s.agents.builder


def test_crd_schema_is_structural():
    schema = crd_manifest()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    problems: list[str] = []

    def walk(node: dict[str, Any], path: str) -> None:
        typed = node.get("type") or node.get("x-kubernetes-int-or-string") or node.get(
            "x-kubernetes-preserve-unknown-fields")
        if not typed:
            problems.append(f"{path}: no type")
        for banned in ("$ref", "anyOf", "oneOf", "allOf", "title", "default"):
            if banned in node:
                problems.append(f"{path}: {banned}")
        for key, sub in node.get("properties", {}).items():
            walk(sub, f"{path}.{key}")
        if isinstance(node.get("items"), dict):
            walk(node["items"], f"{path}[]")
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"], f"{path}{{}}")

    walk(schema, "")
    assert problems == []
    assert "kopf" in schema["properties"]["status"]["properties"]
    columns = [c["name"] for c in crd_manifest()["spec"]["versions"][0]["additionalPrinterColumns"]]
    assert columns[:7] == ["Phase", "Progress", "Builder", "Adversary", "Ready", "Attention", "Age"]

"""Faults (issue 12, second trial): an unknown or misspelt field got pydantic's "Extra inputs
are not permitted" with no hint, and field paths were written three ways (`spec.timing.x`,
`agents.builder.x`, `spec: agents...`). Now every producer (validate, run, the operator's
Invalid condition, the preflight checks) names the full wire path from the document root,
camelCase with list indices in brackets, and an unknown field gets the nearest known names."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from loopphase.api.spec import LoopPhaseSpec
from loopphase.operator.status_io import invalid_status, validation_message
from loopphase.runner.preflight import cluster_problems, local_problems
from loopphase.runner.specfile import SpecFileError, parse_manifest
from pydantic import ValidationError

PHASE = {"id": "p1", "plan": "p1.md", "statusFile": "S1.md"}
BASE: dict[str, Any] = {"repo": {"url": "https://example.invalid/r.git"}, "phases": [PHASE]}
# One path form: spec, then .camelCase names and [index]es; the message follows ": ".
PATH_RE = re.compile(r"^spec(\.[A-Za-z][A-Za-z0-9-]*|\[\d+\])+$")

CASES = [
    ({"timing": {"stalIdle": 3}}, "spec.timing.stalIdle", "unknown field; did you mean stallIdle?"),
    ({"agents": {"builder": {"modle": "opus"}}}, "spec.agents.builder.modle",
     "unknown field; did you mean model?"),
    ({"agents": {"builder": {"env": [{"name": "K", "secretKeyRef": {"name": "s", "kye": "k"}}]}}},
     "spec.agents.builder.env[0].secretKeyRef.kye", "did you mean key?"),
    ({"signalIntervall": 3}, "spec.signalIntervall", "the fields here are: repo, phases"),
    ({"phases": [PHASE, {**PHASE, "id": "P 2"}]}, "spec.phases[1].id", "must be a DNS label"),
    ({"phases": [PHASE, PHASE]}, "spec.phases[1].id", "duplicate phase id(s) p1"),
    ({"phases": [{**PHASE, "models": {"builder": "a b"}}]}, "spec.phases[0].models.builder",
     "may only contain"),
    ({"agents": {"builder": {"backend": "sim"}}}, "spec.agents.builder.simScenario",
     "required for backend sim"),
    ({"agents": {"builder": {"backend": "opencode"}}}, "spec.agents.builder.opencodeServer",
     "required for the opencode backend"),
    ({"agents": {"builder": {"resources": {"limits": {"memory": "zz"}}}}},
     "spec.agents.builder.resources.limits.memory", "not a Kubernetes quantity"),
    ({"texts": {"limitProbe": "your usage limit has reset, resume"}}, "spec.texts.limitProbe",
     "mistaken for agent output"),
    ({"startAt": "nope"}, "spec.startAt", "not a phase id"),
    ({"timeZone": "Mars/Base"}, "spec.timeZone", "not an IANA zone"),
    ({"repo": {"url": "http://x.invalid/r.git", "credentialsSecret": "s"}},
     "spec.repo.credentialsSecret", "not encrypted"),
    ({"repo": {"url": "https://x.invalid/r.git", "branch": "a..b"}}, "spec.repo.branch",
     "not a valid branch name"),
    ({"notify": {"webhooks": [{"name": "a", "urlEnv": "A", "kinds": []}]}},
     "spec.notify.webhooks[0].kinds", "is empty"),
]


def errors(raw: dict[str, Any]) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        LoopPhaseSpec.model_validate(raw)
    return info.value


def lines_of(text: str) -> list[tuple[str, str]]:
    """(path, message) of each ``path: message`` error line (indented, as validate prints)."""
    out = []
    for line in text.splitlines():
        if line.startswith("  spec"):
            path, _, message = line.strip().partition(": ")
            out.append((path, message))
    return out


@pytest.mark.parametrize(("extra", "path", "words"), CASES)
def test_validate_and_run_name_the_full_wire_path(extra: dict[str, Any], path: str, words: str) -> None:
    with pytest.raises(SpecFileError) as info:
        parse_manifest({"apiVersion": "loopphase.dev/v1alpha1", "kind": "LoopPhase",
                        "metadata": {"name": "x"}, "spec": {**BASE, **extra}}, "x.yaml")
    found = lines_of(str(info.value))
    assert found, str(info.value)
    for where, message in found:
        assert PATH_RE.match(where), where
        leaf = re.split(r"[.\[]", where)[-1]
        assert not message.startswith((leaf, "spec", "agents.", "repo.", "timing.")), message
    assert any(where == path and words in message for where, message in found), found


@pytest.mark.parametrize(("extra", "path", "words"), CASES)
def test_the_operators_invalid_condition_uses_the_same_form(extra: dict[str, Any], path: str,
                                                             words: str) -> None:
    message = validation_message(errors({**BASE, **extra}))
    parts = [p.partition(": ") for p in message.split("; spec")]
    assert any(("spec" + where if not where.startswith("spec") else where) == path and words in text
               for where, _, text in parts), message
    status = invalid_status({}, message, 2, __import__("datetime").datetime(2026, 11, 30))
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert degraded["reason"] == "InvalidSpec" and f"{path}: " in degraded["message"]


def test_the_validate_cli_prints_did_you_mean(tmp_path: Path) -> None:
    spec = tmp_path / "typo.yaml"
    spec.write_text(yaml.safe_dump({**BASE, "timing": {"stalIdle": "5m"}}))
    done = subprocess.run([sys.executable, "-m", "loopphase.cli", "validate", "--cluster", str(spec)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "spec.timing.stalIdle: unknown field; did you mean stallIdle?" in done.stderr, done.stderr
    assert "Extra inputs are not permitted" not in done.stderr


def test_preflight_problems_use_the_same_form(tmp_path: Path) -> None:
    spec = LoopPhaseSpec.model_validate({**BASE, "agents": {
        "builder": {"backend": "sim", "simScenario": "missing.yaml",
                    "prompt": {"file": "nope.md"}}}})
    fields = {p.field for p in local_problems(spec, tmp_path)} | {p.field for p in cluster_problems(spec)}
    assert {"spec.agents.builder.simScenario", "spec.agents.builder.prompt.file",
            "spec.repo.url"} <= fields, fields
    assert all(PATH_RE.match(f) for f in fields), fields


@pytest.mark.parametrize(("image", "ok"), [
    ("ubuntu", True), ("ghcr.io/acme/agent:1.2", True), ("registry.local:5000/agent:v1", True),
    ("localhost:5000/a/b@sha256:" + "a" * 64, True), ("[::1]:5000/x:1", True),
    ("Ubuntu", False), ("a b", False), ("ghcr.io/acme/agent:", False), ("img;rm -rf", False),
    ("ghcr.io//x", False), ("x:" + "t" * 129, False), ("x@sha256:abc", False),
])
def test_agent_images_are_image_references(image: str, ok: bool) -> None:
    """`agents.*.image` was not checked: any text reached the pod (and failed as ErrImagePull)."""
    raw = {**BASE, "agents": {"builder": {"image": image}}}
    if ok:
        assert LoopPhaseSpec.model_validate(raw).agents.builder.image == image
        return
    message = validation_message(errors(raw))
    assert message.startswith("spec.agents.builder.image: ") and "not an image reference" in message


@pytest.mark.parametrize("amount", ["1e99999999", "8Ei", "9.3e18"])
def test_resource_quantities_must_be_sane(amount: str) -> None:
    """`memory: 1e99999999` parsed as a finite decimal and passed."""
    message = validation_message(errors({**BASE, "agents": {"builder": {
        "resources": {"limits": {"memory": amount}}}}}))
    assert message.startswith("spec.agents.builder.resources.limits.memory: ") and "too large" in message


@pytest.mark.parametrize(("url", "local"), [
    ("/srv/git/app.git", True), ("file:///srv/git/app.git", True), ("app.git", True),
    ("https://git.example.invalid/app.git", False), ("git@github.com:acme/app.git", False),
    ("ssh://git@host:2222/app.git", False),
])
def test_a_cluster_cannot_reach_a_local_repository(url: str, local: bool) -> None:
    """`validate --cluster` accepted file:// and plain paths, which no agent pod can clone."""
    spec = LoopPhaseSpec.model_validate({**BASE, "repo": {"url": url}})
    found = [p for p in cluster_problems(spec) if p.field == "spec.repo.url"]
    assert bool(found) == local, found
    if local:
        assert "agent pods clone the repository" in found[0].message

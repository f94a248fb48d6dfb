"""Spec input that used to pass validation and hurt later (issue: hardening, faults 4, 5, 11).

Each case is a minimal input: a template that allocated 200 MB, a regex that stalled the event
loop, texts the shim refuses, git refs git refuses, quantities Kubernetes refuses.
"""

from __future__ import annotations

import threading
import tracemalloc
from datetime import UTC, datetime
from typing import Any

import pytest
from loopphase.api.spec import LoopPhaseSpec, render_text
from loopphase.api.status import HandoffStatus
from loopphase.core.handoff import scan_commits
from loopphase.core.observations import Commit
from loopphase.core.typeable import MAX_TYPED_CHARS, untypeable_reason
from loopphase.core.userpattern import SUBJECT_MAX
from pydantic import ValidationError

BASE: dict[str, Any] = {"repo": {"url": "https://example.invalid/r.git"},
                        "phases": [{"id": "p1", "plan": "p1.md", "statusFile": "S1.md"}]}
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def spec(**extra: Any) -> LoopPhaseSpec:
    return LoopPhaseSpec.model_validate({**BASE, **extra})


def errors_of(**extra: Any) -> str:
    with pytest.raises(ValidationError) as info:
        spec(**extra)
    return " | ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in info.value.errors())


# -- templates: named fields only ---------------------------------------------------------------

@pytest.mark.parametrize("template", ["{role:>200000000}", "{role.__class__}", "{role[0]}",
                                      "{0}", "{}", "{role!r}", "{nope}", "a { b"])
def test_templates_take_named_fields_only(template: str) -> None:
    tracemalloc.start()
    try:
        text = errors_of(texts={"stallNudge": f"loopphase nudge for {template}"})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "texts.stallNudge" in text and "placeholder" in text, text
    assert peak < 20 * 1024 * 1024, f"validation allocated {peak} bytes"


def test_templates_substitute_and_escape() -> None:
    assert render_text("ping {role} in {phase}: {{x}", role="builder", phase="p1") == \
        "ping builder in p1: {x}"
    s = spec(texts={"stallNudge": "nudge {role}, phase {phase}"})
    assert s.texts.stall_nudge == "nudge {role}, phase {phase}"


# -- user regexes: linear time, validated with the engine that runs them ------------------------

def test_catastrophic_pattern_cannot_stall_a_tick() -> None:
    s = spec(handoff={"claimPattern": "^(a+)+$"})
    commits = [Commit(sha=f"{i:040x}", subject="a" * 60 + "!") for i in range(50)]
    result: list[object] = []
    worker = threading.Thread(
        target=lambda: result.append(scan_commits(s, HandoffStatus(), commits, NOW)), daemon=True
    )
    worker.start()
    worker.join(timeout=60)  # Python's backtracking engine needs ~2^60 steps per subject
    assert result == [[]], "scan_commits did not finish: the pattern ran on a backtracking engine"


@pytest.mark.parametrize(("pattern", "word"), [("(a)\\1", "backreferences"),
                                               ("^claim(?=x)", "lookaround"),
                                               ("x" * 201, "at most 200")])
def test_unsupported_patterns_are_refused_with_the_reason(pattern: str, word: str) -> None:
    text = errors_of(handoff={"claimPattern": pattern})
    assert "handoff.claimPattern" in text and word in text, text


def test_subjects_are_capped_before_matching() -> None:
    s = spec(handoff={"claimPattern": "CLAIM-MARK"})
    far = Commit(sha="1" * 40, subject="x" * SUBJECT_MAX + " CLAIM-MARK")
    near = Commit(sha="2" * 40, subject="fix: CLAIM-MARK")
    pings = scan_commits(s, HandoffStatus(), [far, near], NOW)
    assert [p.reason.split()[2] for p in pings] == ["2" * 12 + ":"]


# -- one definition of a typeable text ------------------------------------------------------------

@pytest.mark.parametrize(("text", "word"), [
    ("ping \x7f back", "U+007F"),          # DEL erases on terminals
    ("ping \x9b2J", "U+009B"),             # C1 CSI
    ("ping \x1b[2J", "U+001B"),
    ("x" * (MAX_TYPED_CHARS + 1), "at most 4000"),
])
def test_validation_refuses_what_the_shim_refuses(text: str, word: str) -> None:
    found = errors_of(texts={"claimPing": text})
    assert "texts.claimPing" in found and word in found, found
    assert untypeable_reason(text) is not None  # the shim's own check (shim/server.py) agrees


# -- identifiers, refs, URLs, quantities --------------------------------------------------------

@pytest.mark.parametrize(("extra", "field", "word"), [
    ({"phases": [{"id": "p1\n", "plan": "p.md", "statusFile": "S.md"}]}, "phases.0.id", "DNS label"),
    ({"phases": [{"id": "p١", "plan": "p.md", "statusFile": "S.md"}]}, "phases.0.id", "DNS label"),
    ({"repo": {"url": "https://x.invalid/r.git", "branch": "main:refs/heads/x"}}, "repo.branch", "':'"),
    ({"repo": {"url": "https://x.invalid/r.git", "branch": "main.lock"}}, "repo.branch", ".lock"),
    ({"repo": {"url": "https://x.invalid/r.git", "branch": "feat/"}}, "repo.branch", "end with '/'"),
    ({"repo": {"url": "https://x.invalid/r.git", "branch": "a//b"}}, "repo.branch", "'//'"),
    ({"repo": {"url": "https://x.invalid/r.git", "branch": "x@{1}"}}, "repo.branch", "'@{'"),
    ({"repo": {"url": "https://x.invalid/r\x00.git"}}, "repo.url", "control characters"),
    ({"agents": {"builder": {"resources": {"limits": {"memory": "-1"}}}}},
     "agents.builder.resources.limits", "negative"),
    ({"agents": {"builder": {"resources": {"requests": {"cpu": "lots"}}}}},
     "agents.builder.resources.requests", "quantity"),
])
def test_bad_identifiers_name_the_field(extra: dict[str, Any], field: str, word: str) -> None:
    with pytest.raises(ValidationError) as info:
        spec(**extra)
    errors = info.value.errors()
    text = " | ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
    assert word in text, text
    assert any(".".join(map(str, e["loc"])) == field for e in errors), text


def test_good_identifiers_still_pass() -> None:
    s = spec(repo={"url": "https://x.invalid/r.git", "branch": "release/1.0"},
             agents={"builder": {"resources": {"limits": {"memory": "2Gi", "cpu": "500m"}}}})
    assert s.repo.branch == "release/1.0"

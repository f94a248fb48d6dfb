"""Spec validation under random input (hardening): every input either validates or raises a
pydantic ValidationError whose every error names a field; never another exception, never a
hang, never a large allocation. Bounded so it runs in CI (a few seconds)."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from loopphase.api.spec import LoopPhaseSpec
from pydantic import ValidationError

VALID: dict[str, Any] = {
    "repo": {"url": "https://example.invalid/r.git", "branch": "main"},
    "phases": [{"id": "p1", "plan": "p1.md", "statusFile": "S1.md"},
               {"id": "p2", "plan": "p2.md", "statusFile": "S2.md",
                "models": {"builder": "opus"}}],
    "agents": {"builder": {"backend": "sim", "simScenario": "steps: []"},
               "adversary": {"backend": "claude", "model": "sonnet",
                             "resources": {"limits": {"memory": "2Gi"}}}},
    "timing": {"signalInterval": "2s", "stallIdle": "5m"},
    "handoff": {"claimPattern": "^claim", "passPattern": "\\bPASS\\b"},
    "texts": {"stallNudge": "nudge {role} in {phase}"},
    "startAt": "p1",
}

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(["{role:>99999999}", "{role.__class__}", "^(a+)+$", "(a)\\1", "-1",
                     "main.lock", "feat/", "../../x", "\x00", "\x1b[2J", "１", "p1\n", "5m",
                     "1e308", "https://u:p@h/r.git", "http://h/r.git", "x" * 5000]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=12,
)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            out += paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out += paths(item, (*prefix, index))
    return out


def check(document: Any) -> None:
    try:
        LoopPhaseSpec.model_validate(document)
    except ValidationError as err:
        for error in err.errors():
            assert isinstance(error["msg"], str) and error["msg"], error
            assert len(error["msg"]) < 2000, "an error message should not echo huge input"
    # Any other exception type propagates and fails the property.


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_valid_specs_validate_or_name_the_field(data: st.DataObject) -> None:
    document = copy.deepcopy(VALID)
    for _ in range(data.draw(st.integers(1, 3))):
        where = data.draw(st.sampled_from(paths(document)[1:]))
        parent = document
        for key in where[:-1]:
            parent = parent[key]
        if data.draw(st.booleans()):
            parent[where[-1]] = data.draw(json_values)
        elif isinstance(parent, dict):
            parent.pop(where[-1], None)
    check(document)


@settings(max_examples=150, deadline=None)
@given(json_values)
def test_random_documents_never_raise_anything_but_validation_errors(document: Any) -> None:
    check(document)

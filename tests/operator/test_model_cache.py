"""ModelCache: a hit only for an unchanged raw spec/status, never a stale model."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from loopphase.api.spec import LoopPhaseSpec
from loopphase.api.status import LoopPhaseStatus
from loopphase.operator.model_cache import ModelCache
from pydantic import ValidationError

SPEC: dict[str, Any] = {
    "repo": {"url": "https://example.invalid/r.git", "branch": "main"},
    "phases": [{"id": "p1", "plan": "PLAN-1.md", "statusFile": "STATUS-1.md"}],
    "agents": {"builder": {"backend": "claude"}, "adversary": {"backend": "claude"}},
    "timing": {"signalInterval": "5s"},
}


def test_an_unchanged_spec_is_validated_once() -> None:
    cache = ModelCache()
    first = cache.spec("u1", copy.deepcopy(SPEC))
    again = cache.spec("u1", copy.deepcopy(SPEC))
    assert again is first
    assert (cache.hits, cache.misses) == (1, 1)
    assert first == LoopPhaseSpec.model_validate(SPEC)


def test_a_nested_change_validates_afresh_even_in_the_same_dict_object() -> None:
    cache = ModelCache()
    raw = copy.deepcopy(SPEC)
    first = cache.spec("u1", raw)
    raw["timing"]["signalInterval"] = "7s"  # mutated in place: the snapshot must not follow
    second = cache.spec("u1", raw)
    assert second is not first
    assert second.timing.signal_interval == 7.0
    assert first.timing.signal_interval == 5.0


def test_an_invalid_spec_raises_every_time_and_does_not_poison_the_cache() -> None:
    cache = ModelCache()
    good = cache.spec("u1", copy.deepcopy(SPEC))
    bad = copy.deepcopy(SPEC)
    bad["timing"]["signalInterval"] = "soon"
    for _ in range(2):
        with pytest.raises(ValidationError):
            cache.spec("u1", bad)
    assert cache.spec("u1", copy.deepcopy(SPEC)) == good


def test_entries_are_per_loopphase() -> None:
    cache = ModelCache()
    other = copy.deepcopy(SPEC)
    other["repo"]["branch"] = "dev"
    assert cache.spec("u1", copy.deepcopy(SPEC)).repo.branch == "main"
    assert cache.spec("u2", other).repo.branch == "dev"
    assert cache.spec("u1", copy.deepcopy(SPEC)).repo.branch == "main"


def test_wire_of_an_unchanged_status_is_the_remembered_one_and_comes_back_as_a_hit() -> None:
    cache = ModelCache()
    status = LoopPhaseStatus(phase="Running", message="ok", observed_generation=3)
    wire = cache.wire("u1", status)
    assert wire == status.to_wire()
    # the watch brings our write back: the status is reused, not validated again
    assert cache.status("u1", copy.deepcopy(wire)) is status
    # an equal (not identical) model yields the remembered wire form
    hits = cache.hits
    assert cache.wire("u1", status.model_copy(deep=True)) == wire
    assert cache.hits == hits + 1  # not serialised again


def test_a_changed_status_model_is_serialised_and_a_changed_raw_status_validated() -> None:
    cache = ModelCache()
    status = LoopPhaseStatus(phase="Running", message="ok")
    cache.wire("u1", status)
    changed = status.model_copy(update={"message": "advanced", "completed_at": datetime(2026, 1, 1, tzinfo=UTC)})
    wire = cache.wire("u1", changed)
    assert wire["message"] == "advanced" and "completedAt" in wire
    edited = copy.deepcopy(wire)
    edited["message"] = "edited by someone else"
    assert cache.status("u1", edited).message == "edited by someone else"


def test_forget_drops_both_entries() -> None:
    cache = ModelCache()
    first = cache.spec("u1", copy.deepcopy(SPEC))
    status = LoopPhaseStatus(phase="Running")
    wire = cache.wire("u1", status)
    cache.forget("u1")
    assert cache.spec("u1", copy.deepcopy(SPEC)) is not first
    assert cache.status("u1", copy.deepcopy(wire)) is not status

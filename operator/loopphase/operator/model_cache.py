"""Validated spec and status per LoopPhase, reused while the object's raw fields are unchanged.

At a 5 s tick across hundreds of LoopPhases, validating the same spec and status with pydantic
and serialising an unchanged status back to JSON was about a third of the operator's per-tick
CPU. The raw dict is compared with a private deep copy of what was validated (a comparison is
far cheaper than a validation); any difference, however small, validates afresh. Nothing here
changes what a tick decides: a hit returns a model equal to what validation would build.

The models handed out are shared between ticks, which is safe because the decision core never
mutates its inputs (pinned by tests/core: reconcile and settle copy what they edit).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from loopphase.api.spec import LoopPhaseSpec
from loopphase.api.status import LoopPhaseStatus

M = TypeVar("M", LoopPhaseSpec, LoopPhaseStatus)


def _plain(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A plain dict of the top level (kopf hands out mapping views)."""
    return raw if isinstance(raw, dict) else dict(raw)


@dataclass
class ModelCache:
    """Keyed by the LoopPhase's uid; one spec and one status each."""

    _specs: dict[str, tuple[dict[str, Any], LoopPhaseSpec]] = field(default_factory=dict)
    _statuses: dict[str, tuple[dict[str, Any], LoopPhaseStatus]] = field(default_factory=dict)
    hits: int = 0  # for tests and diagnosis
    misses: int = 0

    def spec(self, uid: str, raw: Mapping[str, Any]) -> LoopPhaseSpec:
        """The validated spec; raises pydantic's ValidationError like ``model_validate``."""
        return self._validated(self._specs, LoopPhaseSpec, uid, raw)

    def status(self, uid: str, raw: Mapping[str, Any]) -> LoopPhaseStatus:
        """The validated status; raises pydantic's ValidationError like ``model_validate``."""
        return self._validated(self._statuses, LoopPhaseStatus, uid, raw)

    def _validated(
        self, store: dict[str, tuple[dict[str, Any], M]], model_type: type[M], uid: str,
        raw: Mapping[str, Any],
    ) -> M:
        plain = _plain(raw)
        known = store.get(uid)
        if known is not None and known[0] == plain:
            self.hits += 1
            return known[1]
        self.misses += 1
        model = model_type.model_validate(plain)
        store[uid] = (copy.deepcopy(plain), model)
        return model

    def wire(self, uid: str, status: LoopPhaseStatus) -> dict[str, Any]:
        """``status.to_wire()``, or the remembered wire form when the model is unchanged.

        The result is remembered as this LoopPhase's status: next tick, an object whose status
        equals it (our write came back through the watch) reuses ``status`` without validating.
        It is shared with the cache: callers read it, never mutate it.
        """
        known = self._statuses.get(uid)
        if known is not None and (known[1] is status or known[1] == status):
            self.hits += 1
            return known[0]
        self.misses += 1
        wire = status.to_wire()
        self._statuses[uid] = (copy.deepcopy(wire), status)
        return wire

    def forget(self, uid: str) -> None:
        self._specs.pop(uid, None)
        self._statuses.pop(uid, None)

"""Where LoopPhases share their account holds (the core stays per-LoopPhase).

After each tick a LoopPhase publishes the holds its own agents' windows started
(``core.holds.exported``); before its next tick every other LoopPhase reads them back as
observations (``Observations.account_holds``), each stamped with the publisher's key in
``loopPhase``. Two stores with one interface (``HoldRegistry``):

* ``MemoryHoldRegistry`` (here): one operator process (every LoopPhase it runs), keyed
  ``namespace/name``;
* ``runner.hold_files.FileHoldRegistry``: ``loopphase run`` processes sharing a state
  directory (specs beside each other share ``.loopphase/``).

A publisher that stopped ticking must not hold the others forever: entries older than
``stale_after`` seconds are ignored (a live LoopPhase republishes every tick).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from loopphase.api.status import AccountHold

STALE_AFTER = 600.0


class HoldRegistry(Protocol):
    def publish(self, key: str, holds: list[AccountHold], now: datetime) -> None: ...

    def others(self, key: str, now: datetime) -> tuple[AccountHold, ...]: ...

    def forget(self, key: str) -> None: ...


def stamp(key: str, holds: list[AccountHold]) -> list[AccountHold]:
    """The holds as the others see them: ``loopPhase`` = the publisher's key."""
    return [h.model_copy(update={"loop_phase": key}) for h in holds]


@dataclass
class MemoryHoldRegistry:
    stale_after: float = STALE_AFTER
    _published: dict[str, tuple[datetime, list[AccountHold]]] = field(default_factory=dict)

    def publish(self, key: str, holds: list[AccountHold], now: datetime) -> None:
        if holds:
            self._published[key] = (now, stamp(key, holds))
        else:
            self._published.pop(key, None)

    def others(self, key: str, now: datetime) -> tuple[AccountHold, ...]:
        fresh = now - timedelta(seconds=self.stale_after)
        return tuple(
            hold for other, (at, holds) in sorted(self._published.items())
            if other != key and at >= fresh for hold in holds
        )

    def forget(self, key: str) -> None:
        self._published.pop(key, None)

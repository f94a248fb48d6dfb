"""Where LoopPhases share their account holds (the core stays per-LoopPhase).

After each tick a LoopPhase publishes the holds its own agents' windows started
(``core.holds.exported``); before its next tick every other LoopPhase reads them back as
observations (``Observations.account_holds``), each stamped with the publisher's key in
``loopPhase``. Two stores with one interface:

* ``MemoryHoldRegistry``: one operator process (every LoopPhase it runs), keyed
  ``namespace/name``;
* ``FileHoldRegistry``: ``loopphase run`` processes sharing a state directory (specs beside
  each other share ``.loopphase/``): one JSON file per LoopPhase, written atomically.

A publisher that stopped ticking must not hold the others forever: entries older than
``stale_after`` seconds are ignored (a live LoopPhase republishes every tick).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from pydantic import TypeAdapter, ValidationError

from loopphase.api.status import AccountHold

log = logging.getLogger(__name__)
STALE_AFTER = 600.0
_HOLDS = TypeAdapter(list[AccountHold])


class HoldRegistry(Protocol):
    def publish(self, key: str, holds: list[AccountHold], now: datetime) -> None: ...

    def others(self, key: str, now: datetime) -> tuple[AccountHold, ...]: ...

    def forget(self, key: str) -> None: ...


def _stamp(key: str, holds: list[AccountHold]) -> list[AccountHold]:
    return [h.model_copy(update={"loop_phase": key}) for h in holds]


@dataclass
class MemoryHoldRegistry:
    stale_after: float = STALE_AFTER
    _published: dict[str, tuple[datetime, list[AccountHold]]] = field(default_factory=dict)

    def publish(self, key: str, holds: list[AccountHold], now: datetime) -> None:
        if holds:
            self._published[key] = (now, _stamp(key, holds))
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


@dataclass
class FileHoldRegistry:
    """``<directory>/<key>.json``: {"publishedAt": ISO time, "holds": [AccountHold, ...]}."""

    directory: Path
    stale_after: float = STALE_AFTER

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}.json"

    def publish(self, key: str, holds: list[AccountHold], now: datetime) -> None:
        path = self._path(key)
        if not holds:
            path.unlink(missing_ok=True)
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        body = {
            "publishedAt": now.isoformat(),
            "holds": [h.model_dump(mode="json", by_alias=True) for h in _stamp(key, holds)],
        }
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(body, indent=1) + "\n", encoding="utf-8")
        tmp.replace(path)

    def others(self, key: str, now: datetime) -> tuple[AccountHold, ...]:
        if not self.directory.is_dir():
            return ()
        fresh = now - timedelta(seconds=self.stale_after)
        out: list[AccountHold] = []
        for path in sorted(self.directory.glob("*.json")):
            if path.stem == key:
                continue
            try:
                body = json.loads(path.read_text(encoding="utf-8"))
                published = datetime.fromisoformat(body["publishedAt"])
                holds = _HOLDS.validate_python(body["holds"])
            except (OSError, ValueError, KeyError, TypeError, ValidationError) as err:
                log.warning("account holds file %s unreadable, ignored: %s", path, err)
                continue
            if published >= fresh:
                out.extend(holds)
        return tuple(out)

    def forget(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

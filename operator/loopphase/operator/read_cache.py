"""Short-lived cache of GETs of objects the operator only reads (prompt ConfigMaps, credential
Secrets), shared by every LoopPhase's tick."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from loopphase.operator.kubeapi import KubeApi

READ_CACHE_TTL = 10.0


@dataclass
class ReadCache:
    """Short-lived cache of GETs of objects the operator only reads (prompt ConfigMaps,
    credential Secrets): with hundreds of LoopPhases each tick would otherwise GET them again.
    A change is seen within ``ttl`` seconds; a missing object (None) is cached too."""

    ttl: float = READ_CACHE_TTL
    clock: Callable[[], float] = time.monotonic
    _items: dict[str, tuple[float, dict[str, Any] | None]] = field(default_factory=dict)

    async def get(self, api: KubeApi, path: str) -> dict[str, Any] | None:
        now = self.clock()
        hit = self._items.get(path)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        value = await api.get(path)
        if len(self._items) > 1000:
            self._items = {k: v for k, v in self._items.items() if now - v[0] < self.ttl}
        self._items[path] = (now, value)
        return value


async def cached_get(api: KubeApi, path: str, cache: ReadCache | None) -> dict[str, Any] | None:
    return await (cache.get(api, path) if cache is not None else api.get(path))

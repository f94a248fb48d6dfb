"""Replay protection: a bounded LRU of delivery ids already processed."""

from __future__ import annotations

from collections import OrderedDict


class ReplayGuard:
    """Remembers the last ``capacity`` delivery ids (oldest forgotten first).

    A captured, validly signed delivery can be re-sent by anyone who saw it (signatures cover
    no timestamp); refusing a delivery id seen before bounds that to ids older than the window.
    """

    def __init__(self, capacity: int = 4096) -> None:
        if capacity < 1:
            raise ValueError("replay window must hold at least one delivery id")
        self.capacity = capacity
        self._seen: OrderedDict[str, None] = OrderedDict()

    def seen(self, delivery: str) -> bool:
        """True if ``delivery`` was seen before; otherwise remember it and return False."""
        if delivery in self._seen:
            self._seen.move_to_end(delivery)
            return True
        self._seen[delivery] = None
        while len(self._seen) > self.capacity:
            self._seen.popitem(last=False)
        return False

    def __len__(self) -> int:
        return len(self._seen)

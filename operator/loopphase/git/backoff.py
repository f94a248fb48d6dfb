"""Exponential backoff with an injectable clock (no sleeping: callers ask "may I call now?")."""

from __future__ import annotations

import time
from collections.abc import Callable


class Backoff:
    """Tracks consecutive failures; after N failures calls wait ``base * 2**(N-1)`` (capped)."""

    def __init__(
        self,
        *,
        base: float = 1.0,
        maximum: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base = base
        self.maximum = maximum
        self.clock = clock
        self.failures = 0
        self.last_error: str | None = None
        self._until = 0.0

    @property
    def delay(self) -> float:
        """The wait imposed by the current failure count (0 when healthy)."""
        if self.failures == 0:
            return 0.0
        return min(self.base * 2 ** (self.failures - 1), self.maximum)

    def blocked(self) -> bool:
        """True while a call must not touch the network."""
        return self.failures > 0 and self.clock() < self._until

    def remaining(self) -> float:
        return max(0.0, self._until - self.clock()) if self.failures else 0.0

    def failure(self, error: str) -> None:
        self.failures += 1
        self.last_error = error
        self._until = self.clock() + self.delay

    def success(self) -> None:
        self.failures = 0
        self.last_error = None
        self._until = 0.0

    def message(self) -> str:
        return f"backing off after {self.failures} failures: {self.last_error}"

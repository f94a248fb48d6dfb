"""What the receiver saw, by outcome: a plain counter object others can export as metrics."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, fields


@dataclass
class WebhookCounters:
    """Monotonic counts of webhook requests by outcome (each request lands in exactly one of
    the outcome counters; ``received`` counts them all, ``notified`` counts LoopPhases woken).

    Names follow Prometheus conventions once prefixed (``loopphase_webhook_<name>_total``).
    """

    received: int = 0
    accepted: int = 0  # a verified push that matched at least one LoopPhase
    unmatched: int = 0  # a verified push no LoopPhase watches (another branch or repository)
    pings: int = 0  # GitHub/Gitea "ping" (sent when a webhook is created)
    ignored: int = 0  # a verified event that is not a branch push (tags, issues, ...)
    unauthenticated: int = 0  # 401: no signature or token header
    forbidden: int = 0  # 403: signature/token matches no configured secret
    replayed: int = 0  # 409: a delivery id already processed
    too_large: int = 0  # 413: body over the limit
    bad_request: int = 0  # 400: not a known provider, or unreadable JSON
    notified: int = 0  # LoopPhases told to observe (one accepted push may wake several)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)

    def as_dict(self) -> dict[str, int]:
        with self._lock:
            return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}

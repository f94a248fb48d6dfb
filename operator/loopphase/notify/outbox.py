"""The notification outbox, pure: no I/O, no clock (times come in as arguments).

``enqueue`` adds an item per (new history entry, webhook that wants its kind); ``apply`` folds
delivery outcomes back: delivered items leave, failed ones are retried with exponential
backoff (``next_attempt_at``) until ``MAX_ATTEMPTS``. Both return a new status.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from loopphase.api.base import clip
from loopphase.api.notify import MAX_ATTEMPTS, OUTBOX_LIMIT, NotifyKind, NotifyStatus, OutboxItem
from loopphase.api.spec import LoopPhaseSpec
from loopphase.api.status import LoopPhaseStatus
from loopphase.outbound import scrub

# status.history kinds -> what a user subscribes to.
NOTIFY_KIND: dict[str, NotifyKind] = {
    "limit-armed": "limit-armed",
    "limit-lifted": "limit-lifted",
    "nudge": "heal",
    "restart-warm": "heal",
    "restart-cold": "heal",
    "recreate": "heal",
    "needs-attention": "needs-attention",
    "circuit-open": "circuit-open",
    "advance": "advance",
    "awaiting-approval": "awaiting-approval",
    "complete": "complete",
}
BACKOFF_BASE = 2.0
BACKOFF_MAX = 300.0


@dataclass(frozen=True)
class Outcome:
    """One delivery attempt's result. ``error`` never holds the URL."""

    id: int
    webhook: str
    ok: bool
    at: datetime
    error: str = ""
    final: bool = False  # no retry can help (the webhook left the spec, a bad URL)


def backoff(attempts: int) -> float:
    """Seconds before attempt ``attempts + 1``: 2, 4, 8, ... capped at 300."""
    return min(BACKOFF_MAX, BACKOFF_BASE * 2 ** max(0, attempts - 1))


def enqueue(spec: LoopPhaseSpec, before: LoopPhaseStatus, after: LoopPhaseStatus) -> LoopPhaseStatus:
    """``after`` with an outbox item for every history entry newer than ``before``'s that a
    webhook subscribes to. The outbox keeps the newest ``OUTBOX_LIMIT`` items."""
    if spec.notify is None or not spec.notify.webhooks:
        return after
    fresh = [h for h in after.history if h.seq > before.history_seq]
    items: list[OutboxItem] = []
    seq = after.notifications.seq
    phase = after.current.id if after.current is not None else ""
    for entry in fresh:
        kind = NOTIFY_KIND.get(entry.kind)
        if kind is None:
            continue
        for hook in spec.notify.webhooks:
            if kind in hook.kinds:
                seq += 1
                items.append(OutboxItem(id=seq, webhook=hook.name, kind=kind, role=entry.role,
                                        rule=entry.rule, reason=scrub(entry.reason), phase=phase,
                                        time=entry.time))
    if not items:
        return after
    outbox = [*after.notifications.outbox, *items]
    dropped = max(0, len(outbox) - OUTBOX_LIMIT)
    notes = after.notifications.model_copy(update={
        "seq": seq, "outbox": outbox[dropped:], "dropped": after.notifications.dropped + dropped,
    })
    return after.model_copy(update={"notifications": notes})


def apply(status: LoopPhaseStatus, outcomes: Iterable[Outcome]) -> LoopPhaseStatus:
    """``status`` with delivered items removed and failed ones rescheduled or given up."""
    results = {(o.id, o.webhook): o for o in outcomes}
    if not results:
        return status
    old = status.notifications
    kept: list[OutboxItem] = []
    delivered, failed = old.delivered, old.failed
    for item in old.outbox:
        outcome = results.get((item.id, item.webhook))
        if outcome is None:
            kept.append(item)
        elif outcome.ok:
            delivered += 1
        else:
            attempts = item.attempts + 1
            if outcome.final or attempts >= MAX_ATTEMPTS:
                failed += 1
                continue
            kept.append(item.model_copy(update={
                "attempts": attempts, "last_error": clip(outcome.error, 300),
                "next_attempt_at": outcome.at + timedelta(seconds=backoff(attempts)),
            }))
    notes = NotifyStatus(seq=old.seq, outbox=kept, delivered=delivered, failed=failed, dropped=old.dropped)
    return status.model_copy(update={"notifications": notes})


def fold(
    spec: LoopPhaseSpec, before: LoopPhaseStatus, after: LoopPhaseStatus, outcomes: Iterable[Outcome]
) -> LoopPhaseStatus:
    """One tick's notification bookkeeping: enqueue what happened, fold in what was delivered."""
    return apply(enqueue(spec, before, after), outcomes)

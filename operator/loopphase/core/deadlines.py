"""When the next decision falls due between regular ticks (pure)."""

from __future__ import annotations

from datetime import datetime

from loopphase.api.status import LoopPhaseStatus


def next_wakeup(status: LoopPhaseStatus, now: datetime) -> datetime | None:
    """The earliest future limit-window end: the probe should go out right then, not up to a
    tick later (a fixed tick would add up to one signal interval to every resume)."""
    ends = [a.limit.until for a in status.agents.values() if a.limit is not None and a.limit.until > now]
    return min(ends) if ends else None

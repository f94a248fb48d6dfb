"""Reset times printed in usage-limit banners, as absolute UTC datetimes.

Pure: the clock (``now``) and the fallback zone are arguments. Only a time-of-day shape counts
("resets 9am", "resets 12:50am", "resets 14:00", "resets Oct 31, 9am", "reset at 9am (Zone)",
"|1760004000"): the launcher's regex also read "reset 10 files" as 10 o'clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ResetKind = Literal["time", "dated", "epoch"]

# A dated reset more than this far in the past belongs to next year ("Jan 2" seen on Dec 30).
DATED_ROLLOVER = timedelta(days=180)

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")

_TIME = (
    r"(?:(?P<h>\d{1,2})(?::(?P<m>[0-5]\d))?\s*(?P<ap>[ap])\.?m\.?(?!\w)"
    r"|(?P<H>\d{1,2}):(?P<M>[0-5]\d)(?![\w:]))"
)
_DATE = (
    r"(?:(?P<mon>jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+"
    r"(?P<day>\d{1,2})(?:st|nd|rd|th)?,?\s+(?:at\s+)?)"
)
_ZONE = r"(?:\s*\((?P<zone>[^()\s]{1,64})\))?"
RESET_CLAUSE_RE = re.compile(rf"\bresets?\s+(?:at\s+|on\s+)?{_DATE}?{_TIME}{_ZONE}", re.IGNORECASE)
EPOCH_RE = re.compile(r"\|\s*(?P<epoch>\d{9,10})(?!\d)")
_ZONE_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_+\-]*(?:/[A-Za-z0-9_+\-]+){0,2}$")


@dataclass(frozen=True)
class ResetHint:
    """When a hard banner says the limit resets. ``at`` is tz-aware UTC."""

    at: datetime
    kind: ResetKind
    rule: str
    excerpt: str


def zone_or_default(name: str | None, default: tzinfo) -> tzinfo:
    """The named IANA zone if it exists, else ``default``."""
    if not name or not _ZONE_NAME_RE.match(name):
        return default
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return default


def _hour_minute(match: re.Match[str]) -> tuple[int, int] | None:
    """24-hour (hour, minute) from a _TIME match, None when out of range."""
    if match.group("H") is not None:
        hour, minute = int(match.group("H")), int(match.group("M"))
        return (hour, minute) if hour <= 23 else None
    hour, minute = int(match.group("h")), int(match.group("m") or 0)
    if not 1 <= hour <= 12:
        return None
    hour %= 12
    if match.group("ap").lower() == "p":
        hour += 12
    return hour, minute


def next_wall_time(now: datetime, zone: tzinfo, hour: int, minute: int) -> datetime:
    """The first instant strictly after ``now`` showing hour:minute on a wall clock in ``zone``."""
    local_now = now.astimezone(zone)
    candidate = local_now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if candidate <= local_now:
        # Aware arithmetic on one tzinfo is wall-clock arithmetic: 9am stays 9am across DST.
        candidate = (candidate.replace(tzinfo=None) + timedelta(days=1)).replace(tzinfo=zone)
    return candidate.astimezone(UTC)


def dated_time(
    now: datetime, zone: tzinfo, month: int, day: int, hour: int, minute: int
) -> datetime:
    """That date in now's year, or next year when that is more than ~180 days past."""
    local_now = now.astimezone(zone)
    candidate = datetime(local_now.year, month, day, hour, minute, tzinfo=zone)
    if candidate < local_now - DATED_ROLLOVER:
        candidate = datetime(local_now.year + 1, month, day, hour, minute, tzinfo=zone)
    return candidate.astimezone(UTC)


def parse_reset(
    text: str, now: datetime, tz: tzinfo, *, rule: str = "reset", excerpt: str | None = None
) -> ResetHint | None:
    """The reset time stated in one banner's text, or None when it states none we can read.

    Time-only banners give the next occurrence of that wall time after ``now`` (kind "time");
    no plausibility horizon is applied here, that is the caller's policy.
    """
    shown = text.strip() if excerpt is None else excerpt
    try:
        return _parse(text, now, tz, rule, shown)
    except (ValueError, OverflowError):
        # Impossible dates (Feb 30) or instants outside datetime's range: no usable hint.
        return None


def _parse(text: str, now: datetime, tz: tzinfo, rule: str, excerpt: str) -> ResetHint | None:
    epoch = EPOCH_RE.search(text)
    if epoch:
        at = datetime.fromtimestamp(int(epoch.group("epoch")), UTC)
        return ResetHint(at=at, kind="epoch", rule=rule, excerpt=excerpt)
    clause = RESET_CLAUSE_RE.search(text)
    if clause is None:
        return None
    hour_minute = _hour_minute(clause)
    if hour_minute is None:
        return None
    zone = zone_or_default(clause.group("zone"), tz)
    if clause.group("mon") is None:
        at = next_wall_time(now, zone, *hour_minute)
        return ResetHint(at=at, kind="time", rule=rule, excerpt=excerpt)
    month = _MONTHS.index(clause.group("mon").lower()[:3]) + 1
    at = dated_time(now, zone, month, int(clause.group("day")), *hour_minute)
    return ResetHint(at=at, kind="dated", rule=rule, excerpt=excerpt)

"""Reset times printed in usage-limit banners, as absolute UTC datetimes.

Pure: the clock (``now``) and the fallback zone are arguments. Only a time-of-day shape counts
("resets 9am", "resets 12:50am", "resets 14:00", "resets Oct 31, 9am", "resets Jan 2, 2027,
9am", "reset at 9am (Zone)", "continuing automatically at 10:41am", "|1760004000"), or a
duration ("It will reset in 3 hours 20 minutes", "resets in 45m"): the launcher's regex also
read "reset 10 files" as 10 o'clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ResetKind = Literal["time", "dated", "epoch", "relative"]

# A dated reset more than this far in the past belongs to next year ("Jan 2" seen on Dec 30).
DATED_ROLLOVER = timedelta(days=180)

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")

_TIME = (
    r"(?:(?P<h>\d{1,2})(?::(?P<m>[0-5]\d))?\s*(?P<ap>[ap])\.?m\.?(?!\w)"
    r"|(?P<H>\d{1,2}):(?P<M>[0-5]\d)(?![\w:]))"
)
_DATE = (
    r"(?:(?P<mon>jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+"
    r"(?P<day>\d{1,2})(?:st|nd|rd|th)?(?:,?\s+(?P<year>\d{4}))?,?\s+(?:at\s+)?)"
)
_ZONE = r"(?:\s*\((?P<zone>[^()\s]{1,64})\))?"
RESET_CLAUSE_RE = re.compile(
    rf"\b(?:resets?|continuing automatically)\s+(?:at\s+|on\s+)?{_DATE}?{_TIME}{_ZONE}", re.IGNORECASE
)
# "It will reset in 3 hours 20 minutes" (opencode), "resets in 45m", "reset in 2d 4h".
RELATIVE_RE = re.compile(
    r"\bresets?\s+in\s+(?=\d|less than)(?:less than a minute"
    r"|(?:(?P<d>\d{1,3})\s*(?:d|days?)\b[\s,]*)?(?:(?P<h>\d{1,3})\s*(?:h|hrs?|hours?)\b[\s,]*)?"
    r"(?:(?P<m>\d{1,4})\s*(?:m|mins?|minutes?)\b)?)",
    re.IGNORECASE,
)
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


def latest_instant(local: datetime) -> datetime:
    """The UTC instant of an aware local wall time, the later one where DST makes it ambiguous
    (the hour clocks repeat: "2am" on the night summer time ends is two instants) and past the
    gap where it does not exist (the hour clocks skip). A reset read too early would probe or
    heal an agent inside its window; one read an hour late only waits longer."""
    return max(local.replace(fold=0).astimezone(UTC), local.replace(fold=1).astimezone(UTC))


def next_wall_time(now: datetime, zone: tzinfo, hour: int, minute: int) -> datetime:
    """The first instant strictly after ``now`` showing hour:minute on a wall clock in ``zone``."""
    local_now = now.astimezone(zone)
    candidate = local_now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if candidate <= local_now:
        # Aware arithmetic on one tzinfo is wall-clock arithmetic: 9am stays 9am across DST.
        candidate = (candidate.replace(tzinfo=None) + timedelta(days=1)).replace(tzinfo=zone)
    return latest_instant(candidate)


def dated_time(
    now: datetime, zone: tzinfo, month: int, day: int, hour: int, minute: int,
    year: int | None = None,
) -> datetime:
    """That date in ``year``; without one in now's year, or next year when that is more than
    ~180 days past."""
    local_now = now.astimezone(zone)
    if year is not None:
        return latest_instant(datetime(year, month, day, hour, minute, tzinfo=zone))
    candidate = datetime(local_now.year, month, day, hour, minute, tzinfo=zone)
    if candidate < local_now - DATED_ROLLOVER:
        candidate = datetime(local_now.year + 1, month, day, hour, minute, tzinfo=zone)
    return latest_instant(candidate)


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
        return _relative(text, now, rule, excerpt)
    hour_minute = _hour_minute(clause)
    if hour_minute is None:
        return None
    zone = zone_or_default(clause.group("zone"), tz)
    if clause.group("mon") is None:
        at = next_wall_time(now, zone, *hour_minute)
        return ResetHint(at=at, kind="time", rule=rule, excerpt=excerpt)
    month = _MONTHS.index(clause.group("mon").lower()[:3]) + 1
    year = int(clause.group("year")) if clause.group("year") else None
    at = dated_time(now, zone, month, int(clause.group("day")), *hour_minute, year=year)
    return ResetHint(at=at, kind="dated", rule=rule, excerpt=excerpt)


def _relative(text: str, now: datetime, rule: str, excerpt: str) -> ResetHint | None:
    """A stated duration from ``now`` ("reset in 3 hours 20 minutes"), kind "relative"."""
    found = RELATIVE_RE.search(text)
    if found is None:
        return None
    days, hours, minutes = (int(found.group(g) or 0) for g in ("d", "h", "m"))
    if not found.group(0).lower().rstrip().endswith("minute") and days == hours == minutes == 0:
        return None
    delta = timedelta(days=days, hours=hours, minutes=minutes) or timedelta(minutes=1)
    return ResetHint(at=now + delta, kind="relative", rule=rule, excerpt=excerpt)

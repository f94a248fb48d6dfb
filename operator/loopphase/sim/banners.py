"""Usage-limit banners in every format seen in the wild (REFERENCE.md §3), and the fatal error.

``reset_at`` is rounded UP to the whole minute and rendered in the banner's wall-clock form
in the banner's time zone (``tz``, default UTC): "9am", "12:50am", "Oct 31, 9am", ...
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

BANNER_STYLES: tuple[str, ...] = (
    "usage_limit",
    "epoch",
    "five_hour",
    "session",
    "opus_weekly",
    "weekly",
    "hit_limit",
    "hit_session",
    "hit_weekly",
    "extra_usage",
    "monthly_spend",
)

LIMIT_MENU = ("  1. Stop and wait for limit to reset", "  2. Upgrade your plan")

FATAL_TEXT = (
    'API Error: 400 {"type":"error","error":{"type":"invalid_request_error","message":'
    '"messages.3.content.1: `thinking` or `redacted_thinking` blocks in the latest assistant '
    'message cannot be modified. These blocks must remain as they were in the original '
    'response."}}'
)


def round_up_minute(moment: datetime) -> datetime:
    seconds = moment.timestamp()
    return datetime.fromtimestamp(math.ceil(seconds / 60.0) * 60.0, tz=UTC)


def reset_time(now: datetime, reset_in: float, style: str = "five_hour") -> datetime:
    """now + reset_in; rounded up to the minute except for the epoch form, which is exact."""
    at = now + timedelta(seconds=reset_in)
    return at.replace(microsecond=0) + timedelta(seconds=1) if style == "epoch" else round_up_minute(at)


def clock(moment: datetime) -> str:
    """'9am', '12:50am', '12pm' (minutes only when non-zero)."""
    hour = moment.hour % 12 or 12
    suffix = "am" if moment.hour < 12 else "pm"
    if moment.minute:
        return f"{hour}:{moment.minute:02d}{suffix}"
    return f"{hour}{suffix}"


def date_clock(moment: datetime, joiner: str = ", ") -> str:
    return f"{moment.strftime('%b')} {moment.day}{joiner}{clock(moment)}"


def render_banner(style: str, reset_at: datetime, tz: str = "UTC") -> list[str]:
    """The banner lines for ``style``; ``reset_at`` is an aware datetime."""
    zone = ZoneInfo(tz)
    local = reset_at.astimezone(zone)
    c = clock(local)
    if style == "usage_limit":
        return [f"Claude usage limit reached. Your limit will reset at {c} ({tz})."]
    if style == "epoch":
        return [f"Claude AI usage limit reached|{int(reset_at.timestamp())}"]
    if style == "five_hour":
        return [f"5-hour limit reached ∙ resets {c}"]
    if style == "session":
        return [f"Session limit reached ∙ resets {c}"]
    if style == "opus_weekly":
        return [f"Opus weekly limit reached ∙ resets {date_clock(local)}"]
    if style == "weekly":
        return [f"Weekly limit reached · resets {date_clock(local)} ({tz})"]
    if style == "hit_limit":
        return [f"You've hit your limit · resets {c} ({tz})"]
    if style == "hit_session":
        return [f"You've hit your session limit · resets {c} ({tz})"]
    if style == "hit_weekly":
        return [f"You've hit your weekly limit · resets {date_clock(local, ' at ')}"]
    if style == "extra_usage":
        return [f"You're out of extra usage · resets {c} ({tz})"]
    if style == "monthly_spend":
        return ["You've hit your monthly spend limit."]
    raise ValueError(f"unknown banner style {style!r} (known: {', '.join(BANNER_STYLES)})")


def render_soft_warning(reset_at: datetime, tz: str = "UTC") -> str:
    return f"Approaching usage limit · resets at {clock(reset_at.astimezone(ZoneInfo(tz)))}"

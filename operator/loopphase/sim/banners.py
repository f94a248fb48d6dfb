"""Usage-limit banners in every format seen in the wild (REFERENCE.md §3, Claude Code 2.1.x and
opencode 1.x), the screens a restart cannot fix (login, blocking dialogs, full context),
throttling that is no limit, and the fatal error.

``reset_at`` is rounded UP to the whole minute and rendered in the banner's wall-clock form
in the banner's time zone (``tz``, default UTC): "9am", "12:50am", "Oct 31, 9am", ...
BANNER_CLASSES gives the limit class each style names (api.status.LimitClass).
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
    # issue 11: the families beyond the sentences above
    "team_weekly",
    "weekly_time",
    "sonnet",
    "opus_hit",
    "usage_credits",
    "org_spend",
    "credit_balance",
    "api_credit",
    "auto_resume",
    "relative",
)

# The limit class each style names; styles with no reset to wait for are "spend".
BANNER_CLASSES: dict[str, str] = {
    "usage_limit": "session", "epoch": "session", "five_hour": "session", "session": "session",
    "opus_weekly": "model", "weekly": "weekly", "hit_limit": "unknown", "hit_session": "session",
    "hit_weekly": "weekly", "extra_usage": "spend", "monthly_spend": "spend",
    "team_weekly": "weekly", "weekly_time": "weekly", "sonnet": "model", "opus_hit": "model",
    "usage_credits": "spend", "org_spend": "spend", "credit_balance": "spend", "api_credit": "spend",
    "auto_resume": "session", "relative": "unknown",
}
# Styles that state no reset time at all.
NO_RESET_STYLES = frozenset({"monthly_spend", "org_spend", "credit_balance", "api_credit"})

# Screens a restart cannot fix, as the CLIs draw them (one line each unless a tuple).
LOGIN_TEXT = "Invalid API key · Please run /login"
OAUTH_EXPIRED_TEXT = (
    'API Error: 401 {"type":"error","error":{"type":"authentication_error","message":"OAuth token '
    'has expired. Please obtain a new token or refresh your existing token."}} · Please run /login'
)
BYPASS_DIALOG = (
    "─" * 60,
    "  WARNING: Claude Code running in Bypass Permissions mode",
    "",
    "  In Bypass Permissions mode, Claude Code will not ask for your approval before running",
    "  potentially dangerous commands.",
    "",
    "  ❯ 1. No, exit",
    "    2. Yes, I accept",
    "",
    "  Enter to confirm · Esc to cancel",
)
CONTEXT_FULL_TEXT = "Context limit reached · /compact or /clear to continue"
# Throttling the CLI retries, or that says it is not a usage limit: never a window.
OVERLOADED_TEXT = (
    "API Error: Repeated 529 Overloaded errors. The API is at capacity — this is usually "
    "temporary. Try again in a moment."
)
NOT_USAGE_LIMIT_TEXT = (
    "API Error: Server is temporarily limiting requests (not your usage limit) · Rate limited"
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


def render_banner(
    style: str, reset_at: datetime, tz: str = "UTC", now: datetime | None = None
) -> list[str]:
    """The banner lines for ``style``; ``reset_at`` is an aware datetime; ``now`` (default: the
    clock) only for the "relative" style, which states the time left."""
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
    if style == "team_weekly":
        return [f"You've hit your team's weekly usage limit · resets {date_clock(local)} ({tz})"]
    if style == "weekly_time":  # how Claude Code prints a weekly reset less than a day ahead
        return [f"You've hit your weekly limit · resets {c} ({tz})"]
    if style == "sonnet":
        return [f"Sonnet limit reached · resets {c}"]
    if style == "opus_hit":
        return [f"You’ve hit your Opus limit • resets {c} ({tz})"]
    if style == "usage_credits":
        return [f"You're out of usage credits · resets {c} ({tz})"]
    if style == "org_spend":
        return ["You've hit your org's monthly spend limit · run /usage-credits to raise it"]
    if style == "credit_balance":
        return ["Credit balance too low · Add funds: https://platform.claude.com/settings/billing"]
    if style == "api_credit":
        return [
            'API Error: 400 {"type":"error","error":{"type":"invalid_request_error","message":"Your '
            'credit balance is too low to access the Anthropic API. Please go to Plans & Billing to '
            'upgrade or purchase credits."}}'
        ]
    if style == "auto_resume":
        resume = clock(local + timedelta(minutes=1))
        return [
            f"You've hit your 5-hour limit · resets {c} ({tz})",
            f"Usage limit reached · continuing automatically at {resume} · esc to cancel",
        ]
    if style == "relative":  # opencode
        left = max(math.ceil((reset_at - (now or datetime.now(UTC))).total_seconds() / 60), 1)
        hours, minutes = divmod(left, 60)
        return [f"Usage limit reached. It will reset in {hours} hours {minutes} minutes."]
    raise ValueError(f"unknown banner style {style!r} (known: {', '.join(BANNER_STYLES)})")


def render_soft_warning(reset_at: datetime, tz: str = "UTC") -> str:
    return f"Approaching usage limit · resets at {clock(reset_at.astimezone(ZoneInfo(tz)))}"

"""What the agent CLI's hooks add to a screen reading (Claude Code's StopFailure), pure.

A StopFailure hook reports why a turn failed: an error type (``rate_limit``,
``billing_error``, ``authentication_failed``, ``overloaded``, ``server_error``, ...) and, in
``last_assistant_message`` (HookEvent.message), the text the CLI showed, usually the banner
with its reset. That text is read by the same classifier as the pane, so a hook-only limit gets
the banner's reset and class instead of a flat window, throttling that says it is not a usage
limit is no window at all, a failed login is a login finding and "Prompt is too long" a
context-full finding.

Only the latest StopFailure counts, and only while nothing superseded it: a later clean Stop or
a new session (SessionStart), or visible work seen after it.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime, tzinfo

from loopphase.core.observations import AgentObservation, HookEvent
from loopphase.core.patterns import LIMIT_ERROR_TYPE_RE
from loopphase.core.screen import EXCERPT_MAX, Match, ScreenReading, classify

__all__ = ["hook_reading", "latest_stop_failure"]

# Error types that are no usage window whatever the message says (the CLI retried, or retries).
TRANSIENT_ERROR_TYPE_RE = re.compile(r"overload|server.?error|timeout|unavailable", re.IGNORECASE)
# Claude Code writes ``authentication_failed``; the other spellings cover a 401 surfaced as the
# error type. The one place hook logins are read (attention.py reads ``reading.login``).
LOGIN_ERROR_TYPE_RE = re.compile(
    r"authentication|unauthori[sz]ed|oauth|invalid.?api.?key|\b401\b", re.IGNORECASE
)
SPEND_ERROR_TYPE_RE = re.compile(r"billing|credit|spend|quota", re.IGNORECASE)


def latest_stop_failure(obs: AgentObservation, active_since: datetime | None) -> HookEvent | None:
    """The StopFailure still in force: newer than the last visible work, not superseded."""
    for event in reversed(obs.hook_events):
        if event.name in {"Stop", "SessionStart"}:
            return None
        if event.name != "StopFailure":
            continue
        if event.time is not None and active_since is not None and event.time <= active_since:
            return None
        return event
    return None


def _excerpt(event: HookEvent, shown: str | None) -> str:
    text = f"StopFailure error_type={event.error_type}" + (f": {shown}" if shown else "")
    text = " ".join(text.split())
    return text if len(text) <= EXCERPT_MAX else text[: EXCERPT_MAX - 1] + "…"


def hook_reading(
    reading: ScreenReading,
    obs: AgentObservation,
    active_since: datetime | None,
    now: datetime,
    tz: tzinfo,
) -> ScreenReading:
    """``reading`` with what a StopFailure hook adds when the screen shows neither work nor a
    limit: a limit (rule ``hook.stop-failure``, with the reset and class its message states),
    or a login finding (``hook.authentication-failed``). Unchanged otherwise.
    """
    if reading.limit is not None or reading.active is not None:
        return reading
    event = latest_stop_failure(obs, active_since)
    if event is None:
        return reading
    said = classify(event.message, now, tz) if event.message else None
    error_type = event.error_type or ""
    if (said is not None and said.login is not None) or LOGIN_ERROR_TYPE_RE.search(error_type):
        if reading.login is not None:
            return reading
        shown = said.login.excerpt if said is not None and said.login is not None else event.message
        return dataclasses.replace(reading, login=Match("hook.authentication-failed", _excerpt(event, shown)))
    if said is not None and said.transient is not None:
        # "not your usage limit", 529 overloaded: throttling, never a usage window.
        return reading if reading.transient is not None else dataclasses.replace(
            reading, transient=Match(said.transient.rule, _excerpt(event, said.transient.excerpt))
        )
    if said is not None and said.context_full is not None:
        return reading if reading.context_full is not None else dataclasses.replace(
            reading, context_full=Match("hook.context-full", _excerpt(event, said.context_full.excerpt))
        )
    if said is not None and said.limit is not None:
        return dataclasses.replace(
            reading,
            limit=Match("hook.stop-failure", _excerpt(event, said.limit.excerpt)),
            reset=said.reset,
            limit_class=said.limit_class,
        )
    if not error_type or TRANSIENT_ERROR_TYPE_RE.search(error_type):
        return reading
    if not LIMIT_ERROR_TYPE_RE.search(error_type):
        return reading
    limit_class = "spend" if SPEND_ERROR_TYPE_RE.search(error_type) else "unknown"
    return dataclasses.replace(
        reading,
        limit=Match("hook.stop-failure", _excerpt(event, None)),
        limit_class=limit_class,
    )

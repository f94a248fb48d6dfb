"""The usage-limit window state machine (REFERENCE.md §1), pure.

1. A hard banner seen while not active arms a window until the banner's reset + slack. A
   reset already passed (or a time-only one beyond the horizon: a stated time that passed,
   rolled to tomorrow) means a probe after the slack; an unparsable one, the flat probe
   cadence. Never exponential backoff.
2. Inside the window nothing happens; the caller suppresses every kill/restart/stall path.
3. Window over and banner still there: ONE probe, unless the probe text already sits in the
   input area. The window then re-arms (flat) until the next banner tells otherwise; after the
   first probe of a reset stated moments ago, one retry a minute later instead (banners state
   the minute, the real reset may fall later in it).
4. Active: lifted at once. Banner gone: lifted once the window is over (not before: only
   visible work proves the limit lifted early).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from loopphase.api.spec import TimingSpec
from loopphase.api.status import LimitWindow
from loopphase.core.screen import ScreenReading

PROBE_WARN_AFTER = 3
# Banners state resets to the minute ("resets 3pm"); the real reset can be later within that
# minute, so the first probe (stated time + slack) may come early. One quick retry then, a
# minute later, instead of the flat probe cadence.
EARLY_PROBE_RETRY = timedelta(seconds=60)


@dataclass(frozen=True)
class LimitNote:
    kind: str  # "limit-armed" | "limit-lifted" | "warning" | "probe"
    rule: str
    reason: str
    warning: bool = False


@dataclass(frozen=True)
class LimitStep:
    window: LimitWindow | None
    limited: bool
    probe: bool
    notes: tuple[LimitNote, ...] = ()


def next_until(reading: ScreenReading, now: datetime, timing: TimingSpec) -> tuple[datetime, bool]:
    """When to probe next: (time, parsed-from-banner)."""
    hint = reading.reset
    slack = timedelta(seconds=timing.limit_reset_slack)
    if hint is None:
        return now + timedelta(seconds=timing.probe_fallback), False
    if hint.kind == "time" and hint.at - now > timedelta(seconds=timing.reset_horizon):
        # Time-only banners come from a 5-hour window: a reset this far ahead is a stated time
        # that already passed, rolled to tomorrow. The limit has most likely lifted: probe soon.
        return now + slack, False
    if hint.at <= now:
        return now + slack, False  # a dated/epoch reset already passed: probe soon
    return hint.at + slack, True


def _stated_reset_just_passed(reading: ScreenReading, now: datetime, timing: TimingSpec) -> bool:
    """The banner still shown states a reset that passed less than slack + a minute ago."""
    hint = reading.reset
    if hint is None:
        return False
    at = hint.at
    if hint.kind == "time" and at - now > timedelta(seconds=timing.reset_horizon):
        at -= timedelta(days=1)  # the stated time of day passed and was rolled to tomorrow
    passed = now - at
    return timedelta(0) <= passed < timedelta(seconds=timing.limit_reset_slack) + EARLY_PROBE_RETRY


def _fmt(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%d %H:%M:%SZ")


def step_limit(
    window: LimitWindow | None,
    reading: ScreenReading,
    now: datetime,
    timing: TimingSpec,
    *,
    probe_already_typed: bool,
    probe_deferred: bool = False,
) -> LimitStep:
    """One tick of the window. ``probe_deferred``: the CLI promised its own automatic resume and
    the caller's grace past the reset has not run out: the window is over but no probe yet."""
    banner = reading.limit
    active = reading.active is not None

    if window is None:
        if banner is None or active:
            return LimitStep(None, limited=False, probe=False)
        until, parsed = next_until(reading, now, timing)
        how = (
            f"banner says reset {_fmt(reading.reset.at)}; holding until {_fmt(until)}"
            if parsed and reading.reset is not None
            else f"reset time unparsable or already passed; probe at {_fmt(until)}"
        )
        armed = LimitWindow(
            until=until, parsed=parsed, armed_at=now, rule=banner.rule, excerpt=banner.excerpt
        )
        note = LimitNote("limit-armed", banner.rule, f"{how}; no restarts inside the window")
        return LimitStep(armed, limited=True, probe=False, notes=(note,))

    if banner is None and not active and now < window.until:
        # A vanished banner alone is not proof: stay quiet until the window ends (lesson 3).
        return LimitStep(window, limited=True, probe=False)
    if active or banner is None:
        why = "agent active again" if active else "banner gone"
        note = LimitNote("limit-lifted", "limit.lifted", f"{why} after {window.nudges} probe(s)")
        return LimitStep(None, limited=False, probe=False, notes=(note,))

    # A fresh banner after a probe (the CLI re-prints it, possibly with a new time) re-arms.
    if window.last_probe_at is not None and banner.excerpt != window.excerpt:
        until, parsed = next_until(reading, now, timing)
        if parsed:
            rearmed = window.model_copy(
                update={"until": until, "parsed": True, "excerpt": banner.excerpt}
            )
            note = LimitNote("limit-armed", banner.rule, f"re-armed from fresh banner until {_fmt(until)}")
            return LimitStep(rearmed, limited=True, probe=False, notes=(note,))

    if now < window.until:
        return LimitStep(window, limited=True, probe=False)

    if probe_already_typed or probe_deferred:
        return LimitStep(window, limited=True, probe=False)

    nudges = window.nudges + 1
    retry = timedelta(seconds=timing.probe_fallback)
    quick = window.nudges == 0 and _stated_reset_just_passed(reading, now, timing)
    if quick:  # the stated reset was minute-granular: this probe may be a little early
        retry = min(retry, EARLY_PROBE_RETRY)
    until = now + retry
    probed = window.model_copy(
        update={"nudges": nudges, "last_probe_at": now, "until": until, "parsed": False}
    )
    then = ("; the stated reset passed moments ago (banners state the minute): one retry in "
            f"{int(retry.total_seconds())}s" if quick else "")
    notes = [LimitNote("probe", "limit.probe",
                       f"window over, banner still shown: probe #{nudges}{then}")]
    if nudges == PROBE_WARN_AFTER:
        notes.append(
            LimitNote(
                "warning",
                "limit.probe-warn",
                f"still limited after {nudges} probes; probing every "
                f"{int(timing.probe_fallback)}s, never restarting",
                warning=True,
            )
        )
    return LimitStep(probed, limited=True, probe=True, notes=tuple(notes))

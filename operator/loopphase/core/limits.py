"""The usage-limit window state machine (REFERENCE.md §1), pure.

1. A hard banner seen while not active arms a window until the banner's reset + slack. How
   far ahead a time-of-day reset may be depends on the limit's class: a session (5-hour) or
   unknown limit states a time at most ``timing.resetHorizon`` ahead, so a time further ahead is
   a stated time that passed (a stale banner), rolled to tomorrow: probe after the slack.
   Weekly, monthly, model and spend limits may state a time of day up to a day ahead (or a
   date): that is the window. A dated/epoch reset already passed means a probe after the
   slack; no reset at all, the flat probe cadence, or for a spend/monthly limit (nothing to
   wait for) the slow ``timing.spendProbeInterval``. Never exponential backoff. The window's
   ``decided_by`` and the armed note name the rule that decided (WINDOW_RULES).
2. Inside the window nothing happens; the caller suppresses every kill/restart/stall path.
3. Window over and banner still there: ONE probe, unless the probe text already sits in the
   input area. The window then re-arms (flat, or slow for spend) until the next banner tells
   otherwise; after the first probe of a reset stated moments ago, one retry a minute later
   instead (banners state the minute, the real reset may fall later in it).
4. Active: lifted at once. Banner gone: lifted once the window is over (not before: only
   visible work proves the limit lifted early).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType

from loopphase.api.spec import TimingSpec
from loopphase.api.status import LimitWindow
from loopphase.core.screen import ScreenReading

PROBE_WARN_AFTER = 3
# Banners state resets to the minute ("resets 3pm"); the real reset can be later within that
# minute, so the first probe (stated time + slack) may come early. One quick retry then, a
# minute later, instead of the flat probe cadence.
EARLY_PROBE_RETRY = timedelta(seconds=60)
# Classes whose banners state a reset at most timing.resetHorizon ahead (5-hour windows); the
# others may state a time of day up to a day ahead.
SHORT_HORIZON_CLASSES = frozenset({"session", "unknown", "transient"})
# Classes with nothing to wait for when no reset is stated: probed slowly.
SLOW_PROBE_CLASSES = frozenset({"spend", "monthly"})
# The rules that decide a window's ``until`` (LimitWindow.decided_by), read-only.
WINDOW_RULES: Mapping[str, str] = MappingProxyType({
    "window.stated-reset": "the banner's stated reset (a time of day or a date) + slack",
    "window.epoch-reset": "the reset epoch in the banner's header (Claude AI usage limit reached|<epoch>) + slack",
    "window.stated-duration": "the time left the banner states (It will reset in 3 hours) + slack",
    "window.stale-banner-horizon": "a stated time further ahead than the class allows: stale banner",
    "window.reset-passed": "a stated reset already passed: probe after the slack",
    "window.fallback-cadence": "no reset stated: the flat probe cadence (spec.timing.probeFallback)",
    "window.spend-probe": "no reset to wait for: the slow probe (spec.timing.spendProbeInterval)",
    "window.probe-cadence": "probed, banner still shown: the next probe",
    "window.early-probe-retry": "probed moments after a minute-granular reset: one quick retry",
})


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


@dataclass(frozen=True)
class Decision:
    """When to probe next and why: ``until``, the WINDOW_RULES key, a sentence for the note."""

    until: datetime
    parsed: bool
    rule: str
    reason: str


def horizon(limit_class: str | None, timing: TimingSpec) -> timedelta:
    """How far ahead a time-of-day reset of this class may be before it counts as stale."""
    if (limit_class or "unknown") in SHORT_HORIZON_CLASSES:
        return timedelta(seconds=timing.reset_horizon)
    return timedelta(days=1)


def probe_interval(limit_class: str | None, reading: ScreenReading, timing: TimingSpec) -> tuple[timedelta, str]:
    """The flat cadence between probes: slow for a limit with no reset to wait for."""
    if reading.reset is None and (limit_class or "") in SLOW_PROBE_CLASSES:
        return timedelta(seconds=timing.spend_probe_interval), "window.spend-probe"
    return timedelta(seconds=timing.probe_fallback), "window.fallback-cadence"


def decide(reading: ScreenReading, now: datetime, timing: TimingSpec) -> Decision:
    """When to probe next for the limit ``reading`` shows, and the rule that decided."""
    hint = reading.reset
    cls = reading.limit_class or "unknown"
    slack = timedelta(seconds=timing.limit_reset_slack)
    if hint is None:
        interval, rule = probe_interval(cls, reading, timing)
        until = now + interval
        if rule == "window.spend-probe":
            why = (f"a {cls} limit with no reset to wait for; probing every "
                   f"{int(interval.total_seconds())}s (spec.timing.spendProbeInterval), next at {_fmt(until)}")
        else:
            why = f"the banner states no reset time; probe at {_fmt(until)} (spec.timing.probeFallback)"
        return Decision(until, False, rule, why)
    ahead = hint.at - now
    if hint.kind == "time" and ahead > horizon(cls, timing):
        # A time-only banner of a 5-hour window this far ahead is a stated time that already
        # passed, rolled to tomorrow. The limit has most likely lifted: probe soon.
        until = now + slack
        why = (f"banner says reset {_fmt(hint.at)}, {ahead.total_seconds() / 3600:.1f}h ahead: more than "
               f"a {cls} limit states ({horizon(cls, timing).total_seconds() / 3600:g}h), so a stale banner "
               f"whose time passed; probe at {_fmt(until)}")
        return Decision(until, False, "window.stale-banner-horizon", why)
    if hint.at <= now:
        until = now + slack
        why = f"banner's reset {_fmt(hint.at)} already passed; probe at {_fmt(until)}"
        return Decision(until, False, "window.reset-passed", why)
    until = hint.at + slack
    why = f"banner says reset {_fmt(hint.at)}; holding until {_fmt(until)} ({hint.kind} reset of a {cls} limit)"
    rule = {"epoch": "window.epoch-reset", "relative": "window.stated-duration"}.get(hint.kind, "window.stated-reset")
    return Decision(until, True, rule, why)


def next_until(reading: ScreenReading, now: datetime, timing: TimingSpec) -> tuple[datetime, bool]:
    """When to probe next: (time, parsed-from-banner)."""
    decision = decide(reading, now, timing)
    return decision.until, decision.parsed


def _stated_reset_just_passed(reading: ScreenReading, now: datetime, timing: TimingSpec) -> bool:
    """The banner still shown states a reset that passed less than slack + a minute ago."""
    hint = reading.reset
    if hint is None:
        return False
    at = hint.at
    if hint.kind == "time" and at - now > horizon(reading.limit_class, timing):
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
        decision = decide(reading, now, timing)
        armed = LimitWindow(
            until=decision.until, parsed=decision.parsed, armed_at=now, rule=banner.rule,
            excerpt=banner.excerpt, limit_class=reading.limit_class or "unknown",
            decided_by=decision.rule,
        )
        note = LimitNote(
            "limit-armed", banner.rule,
            f"{decision.reason} [{decision.rule}]; no restarts inside the window",
        )
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
        decision = decide(reading, now, timing)
        if decision.parsed:
            rearmed = window.model_copy(
                update={"until": decision.until, "parsed": True, "excerpt": banner.excerpt,
                        "limit_class": reading.limit_class or window.limit_class,
                        "decided_by": decision.rule}
            )
            note = LimitNote(
                "limit-armed", banner.rule,
                f"re-armed from fresh banner until {_fmt(decision.until)} [{decision.rule}]",
            )
            return LimitStep(rearmed, limited=True, probe=False, notes=(note,))

    if now < window.until:
        return LimitStep(window, limited=True, probe=False)

    if probe_already_typed or probe_deferred:
        return LimitStep(window, limited=True, probe=False)

    nudges = window.nudges + 1
    cls = reading.limit_class or window.limit_class
    retry, decided_by = probe_interval(cls, reading, timing)
    if decided_by == "window.fallback-cadence":
        decided_by = "window.probe-cadence"
    quick = window.nudges == 0 and _stated_reset_just_passed(reading, now, timing)
    if quick:  # the stated reset was minute-granular: this probe may be a little early
        retry, decided_by = min(retry, EARLY_PROBE_RETRY), "window.early-probe-retry"
    until = now + retry
    probed = window.model_copy(
        update={"nudges": nudges, "last_probe_at": now, "until": until, "parsed": False,
                "decided_by": decided_by}
    )
    then = ("; the stated reset passed moments ago (banners state the minute): one retry in "
            f"{int(retry.total_seconds())}s" if quick else "")
    notes = [LimitNote("probe", "limit.probe",
                       f"window over, banner still shown: probe #{nudges}{then}")]
    if nudges == PROBE_WARN_AFTER:
        knob = "spec.timing.spendProbeInterval" if decided_by == "window.spend-probe" else "spec.timing.probeFallback"
        notes.append(
            LimitNote(
                "warning",
                "limit.probe-warn",
                f"still limited after {nudges} probes; probing every "
                f"{int(retry.total_seconds())}s ({knob}), never restarting",
                warning=True,
            )
        )
    return LimitStep(probed, limited=True, probe=True, notes=tuple(notes))

"""A cluster LoopPhase's history as a Timeline, from what the operator keeps in its status.

The operator keeps no per-tick state log: a LoopPhase's status holds its last actions and
decisions (``status.history``, the last 50, each with time, kind, role, rule and reason) and
each agent's current state (``status.agents.<role>``: ``state`` since ``since``, when it last
became active, an open limit window). The lanes are rebuilt from those:

- an action's kind gives the state it put its agent in (``STATE_AFTER``: a start or restart
  -> Starting, limit-armed -> Limited, limit-lifted -> Active, stop -> Stopped, ...); the
  agent's ``activeSince`` and its current ``state``/``since`` are exact and placed as well;
- limit windows run from ``limit-armed`` to ``limit-lifted``; their class is the one the
  core's reason names ("... of a weekly limit"), the open window's from ``status.agents``;
- heals are the heal kinds (nudge, restart-warm, restart-cold, recreate), pings the
  ``handoff.*`` pings, phase lines the role-less start/advance/complete.

Pure: no I/O, no clock (``now`` closes the open spans).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from loopphase.api.status import HistoryEntry, LoopPhaseStatus
from loopphase.timeline.model import PING_SOURCE, ROLE_ORDER, Mark, NoHistory, Span, Timeline

STATE_AFTER: dict[str, str] = {
    "start": "Starting", "restart-warm": "Starting", "restart-cold": "Starting",
    "recreate": "Starting", "limit-armed": "Limited", "limit-lifted": "Active",
    "attention-cleared": "Active", "needs-attention": "NeedsAttention", "circuit-open": "Fatal",
    "stop": "Stopped",
}
HEAL_KINDS = ("nudge", "restart-warm", "restart-cold", "recreate")
PHASE_KINDS = ("start", "advance", "complete")
LIMIT_CLASSES = ("session", "weekly", "monthly", "model", "spend", "transient", "unknown")
_CLASS_RE = re.compile(r"\ba (" + "|".join(LIMIT_CLASSES) + r") limit\b")


def limit_class_of(reason: str) -> str:
    """The limit class a ``limit-armed`` reason names, else ``unknown``."""
    found = _CLASS_RE.search(reason)
    return found.group(1) if found else "unknown"


def from_status(raw_status: dict[str, Any], now: datetime) -> Timeline:
    """The Timeline of a LoopPhase status (its wire form, as read from the API server).

    ``now`` (timezone-aware) closes the spans still open. Raises NoHistory when the status has
    neither history nor an agent with a ``since`` time; pydantic's ValidationError for a status
    this version cannot read."""
    status = LoopPhaseStatus.model_validate(raw_status or {})
    history = sorted(status.history, key=lambda e: (e.time, e.seq))
    transitions: dict[str, list[tuple[datetime, int, str]]] = {}

    def at(role: str, when: datetime, order: int, state: str) -> None:
        transitions.setdefault(role, []).append((when, order, state))

    for entry in history:
        if entry.role is not None and entry.kind in STATE_AFTER:
            at(entry.role, entry.time, 0, STATE_AFTER[entry.kind])
    for role, agent in status.agents.items():
        if agent.active_since is not None:
            at(role, agent.active_since, 1, "Active")
        if agent.since is not None:
            at(role, agent.since, 2, agent.state)  # exact, and the latest: placed last
    times = [e.time for e in history] + [t for spans in transitions.values() for t, _, _ in spans]
    if not times:
        raise NoHistory("the LoopPhase's status has no history yet (status.history is empty)")
    start, end = min(times), max(max(times), now)
    seen = set(transitions) | {e.role for e in history if e.role is not None}
    roles = [r for r in ROLE_ORDER if r in seen] + sorted(seen - set(ROLE_ORDER))
    tl = Timeline(roles=roles, start=start, end=end)
    for role, changes in transitions.items():
        _state_spans(tl, role, sorted(changes), end)
    _limit_spans(tl, history, status, end)
    for entry in history:
        _marks(tl, entry)
    return tl


def _state_spans(tl: Timeline, role: str, changes: list[tuple[datetime, int, str]],
                 end: datetime) -> None:
    merged: list[tuple[datetime, str]] = []
    for when, _, state in changes:
        if merged and merged[-1][1] == state:
            continue
        if merged and merged[-1][0] == when:
            merged[-1] = (when, state)  # two changes at one instant: the later-ordered wins
            continue
        merged.append((when, state))
    for (began, state), (ended, _) in zip(merged, merged[1:] + [(end, "")], strict=True):
        if ended > began:
            tl.states.append(Span(role, began, ended, state))


def _limit_spans(tl: Timeline, history: list[HistoryEntry], status: LoopPhaseStatus,
                 end: datetime) -> None:
    open_window: dict[str, tuple[datetime, str]] = {}
    for entry in history:
        role = entry.role
        if role is None:
            continue
        if entry.kind == "limit-armed":
            cls = limit_class_of(entry.reason)
            if role in open_window and open_window[role][1] != cls and cls != "unknown":
                began, old = open_window.pop(role)
                tl.limits.append(Span(role, began, entry.time, old))
            open_window.setdefault(role, (entry.time, cls))
        elif entry.kind == "limit-lifted" and role in open_window:
            began, cls = open_window.pop(role)
            tl.limits.append(Span(role, began, entry.time, cls))
    for role, agent in status.agents.items():
        window = agent.limit
        if window is not None:
            began = open_window.pop(role, (window.armed_at, ""))[0]
            tl.limits.append(Span(role, min(began, window.armed_at), end, window.limit_class))
    for role, (began, cls) in open_window.items():  # armed, not lifted, no window now: the
        tl.limits.append(Span(role, began, end, cls))  # lift fell out of the kept history


def _marks(tl: Timeline, entry: HistoryEntry) -> None:
    role = entry.role
    if role is not None and entry.kind in HEAL_KINDS:
        tl.heals.append(Mark(role, entry.time, entry.kind))
    elif role is not None and entry.kind == "ping" and entry.rule.startswith("handoff."):
        kind = entry.rule.split(".", 1)[1]
        source = PING_SOURCE.get(kind) or next(
            (r for r in ("builder", "adversary") if r != role), None)
        tl.pings.append(Mark(role, entry.time, kind, source))
    elif role is None and entry.kind in PHASE_KINDS:
        tl.phases.append((entry.time, entry.kind))

"""The ``loopphase_*`` series and how one tick moves them.

Names follow Prometheus conventions: ``loopphase_`` prefix, base units (seconds), ``_total``
for counters (prometheus_client appends it). Labels are bounded sets only: role, state, tier,
class, kind, outcome; never a commit sha, a LoopPhase name or free text.

Gauges (agents by state, open limit windows) are per process sums over every LoopPhase this
process drives: each tick replaces that LoopPhase's contribution (keyed by ``loop``, which
never becomes a label) and the gauge is recomputed from the contributions.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter as Tally
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from loopphase.api.spec import ROLES
from loopphase.api.status import LoopPhaseStatus
from loopphase.core.actions import (
    Action,
    EmitEvent,
    RecreateHost,
    RestartAgent,
    SendText,
)
from loopphase.core.observations import Observations

log = logging.getLogger(__name__)

# Seconds: a ping is typed within a tick or two (signalInterval is seconds to a minute), a
# tick takes milliseconds to seconds, a phase minutes to days.
PING_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600)
TICK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
PHASE_BUCKETS = (60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 3 * 86400, 7 * 86400)

AGENT_STATES = (
    "Starting", "Active", "Idle", "Waiting", "Limited", "Fatal", "Dead", "Stopped", "NeedsAttention",
)
LIMIT_CLASSES = ("session", "weekly", "monthly", "model", "spend", "transient", "unknown")
HEAL_TIERS = ("nudge", "restart-warm", "restart-cold", "recreate")
WRITE_KINDS = ("status", "event")
PING_KINDS = ("claim", "review", "inbox", "other")
ACTION_NAMES = ("StartAgent", "StopAgent", "RestartAgent", "RecreateHost", "SendText", "EmitEvent")


class LoopMetrics:
    """Every LoopPhase series, registered in ``registry`` (a fresh one by default)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.agents = Gauge("loopphase_agents", "Agents by role and state", ["role", "state"], registry=r)
        self.limit_windows = Gauge(
            "loopphase_limit_windows_open", "Armed usage-limit windows by limit class", ["class"], registry=r
        )
        self.heals = Counter(
            "loopphase_heal_actions", "Heal actions taken, by role and tier", ["role", "tier"], registry=r
        )
        self.circuit_opens = Counter(
            "loopphase_circuit_opens", "Heal circuit breakers opened, by role", ["role"], registry=r
        )
        self.pings = Counter(
            "loopphase_pings_delivered", "Hand-off pings typed into an agent, by role and kind",
            ["role", "kind"], registry=r,
        )
        self.ping_failures = Counter(
            "loopphase_ping_failures", "Hand-off pings whose delivery failed", ["role", "kind"], registry=r
        )
        self.ping_latency = Histogram(
            "loopphase_ping_delivery_seconds",
            "From the controller seeing the push (or the file change) to the ping being typed",
            ["kind"], buckets=PING_BUCKETS, registry=r,
        )
        self.advances = Counter(
            "loopphase_phase_advances", "Phase advances (kind=advance) and completions (kind=complete)",
            ["kind"], registry=r,
        )
        self.phase_duration = Histogram(
            "loopphase_phase_duration_seconds", "Time from a phase's start to its verified DONE",
            buckets=PHASE_BUCKETS, registry=r,
        )
        self.tick_duration = Histogram(
            "loopphase_tick_duration_seconds", "One controller tick: observe, reconcile, act",
            buckets=TICK_BUCKETS, registry=r,
        )
        self.ticks = Counter("loopphase_ticks", "Controller ticks run", registry=r)
        self.git_errors = Counter(
            "loopphase_git_observe_errors", "Ticks whose git observation reported an error", registry=r
        )
        self.api_writes = Counter(
            "loopphase_api_writes",
            "Writes to the API (kind=status: status patches or local status saves; kind=event)",
            ["kind"], registry=r,
        )
        self.notifications = Counter(
            "loopphase_notifications", "Webhook notifications by outcome (delivered, failed: given up)",
            ["outcome"], registry=r,
        )
        self.action_failures = Counter(
            "loopphase_action_failures", "Executed actions that failed, by action", ["action"], registry=r
        )
        self._lock = threading.Lock()
        # Each LoopPhase's share and the running fleet totals: a tick replaces one share and
        # moves the totals by the difference, O(roles x states), not a sum over every LoopPhase
        # (which made each tick O(fleet): 15 % of the operator's CPU at 300 LoopPhases).
        self._agent_parts: dict[str, Tally[tuple[str, str]]] = {}
        self._limit_parts: dict[str, Tally[str]] = {}
        self._agent_totals: Tally[tuple[str, str]] = Tally()
        self._limit_totals: Tally[str] = Tally()
        for role in ROLES:
            for state in AGENT_STATES:
                self.agents.labels(role=role, state=state)
        for cls in LIMIT_CLASSES:
            self.limit_windows.labels(cls)
        # Every known label set of the counters starts at 0, so increase() sees the first event
        # and "no advance in 24 h" is 0, not an empty result (an alert on a series that does not
        # exist yet never fires).
        for role in ROLES:
            self.circuit_opens.labels(role)
            for tier in HEAL_TIERS:
                self.heals.labels(role=role, tier=tier)
            for kind in PING_KINDS:
                self.pings.labels(role=role, kind=kind)
                self.ping_failures.labels(role=role, kind=kind)
        for kind in ("advance", "complete"):
            self.advances.labels(kind)
        for action in ACTION_NAMES:
            self.action_failures.labels(action)
        for kind in WRITE_KINDS:
            self.api_writes.labels(kind)
        for outcome in ("delivered", "failed"):
            self.notifications.labels(outcome)

    def wrote(self, kind: str, count: int = 1) -> None:
        """Count API writes (``status`` or ``event``)."""
        if count:
            self.api_writes.labels(kind).inc(count)

    def forget(self, loop: str) -> None:
        """A LoopPhase went away: drop its share of the gauges."""
        with self._lock:
            self._replace(loop, Tally(), Tally())
            self._agent_parts.pop(loop, None)
            self._limit_parts.pop(loop, None)

    def set_status(self, loop: str, status: LoopPhaseStatus) -> None:
        """Replace ``loop``'s share of the agent and limit-window gauges."""
        agents: Tally[tuple[str, str]] = Tally()
        limits: Tally[str] = Tally()
        for role, agent in status.agents.items():
            agents[(role, agent.state)] += 1
            if agent.limit is not None:
                limits[agent.limit.limit_class] += 1
        with self._lock:
            self._replace(loop, agents, limits)

    def _replace(self, loop: str, agents: Tally[tuple[str, str]], limits: Tally[str]) -> None:
        """Swap ``loop``'s share for the new one and set only the gauges whose totals moved
        (caller holds the lock)."""
        old_agents = self._agent_parts.get(loop, Tally())
        old_limits = self._limit_parts.get(loop, Tally())
        self._agent_parts[loop], self._limit_parts[loop] = agents, limits
        if old_agents != agents:
            self._agent_totals.subtract(old_agents)
            self._agent_totals.update(agents)
            for role, state in old_agents.keys() | agents.keys():
                if role in ROLES and state in AGENT_STATES:
                    self.agents.labels(role=role, state=state).set(
                        self._agent_totals[(role, state)])
        if old_limits != limits:
            self._limit_totals.subtract(old_limits)
            self._limit_totals.update(limits)
            for cls in old_limits.keys() | limits.keys():
                if cls in LIMIT_CLASSES:
                    self.limit_windows.labels(cls).set(self._limit_totals[cls])


def heal_tier(action: Action) -> str | None:
    """The heal tier an action is, or None when it is no heal (rule ``heal.*``)."""
    if not action.rule.startswith("heal.") or isinstance(action, EmitEvent):
        return None
    if isinstance(action, SendText):
        return "nudge"
    if isinstance(action, RestartAgent):
        return f"restart-{action.mode}"
    if isinstance(action, RecreateHost):
        return "recreate"
    return None


def _ping_kind(action: SendText) -> str:
    kind = action.rule.split(".", 1)[-1]
    return kind if kind in PING_KINDS else "other"


def record_tick(
    metrics: LoopMetrics,
    loop: str,
    before: LoopPhaseStatus,
    after: LoopPhaseStatus,
    actions: Iterable[Action],
    results: Iterable[tuple[Action, bool, str]],
    observations: Observations | None,
    *,
    started: datetime,
    finished: datetime,
    seconds: float,
) -> None:
    """Move every series for one finished tick of ``loop`` (a key, never a label).

    ``started``: the tick's ``now`` (when observations were taken); ``finished``: after the
    actions ran; ``seconds``: the tick's wall time (monotonic).
    """
    metrics.ticks.inc()
    metrics.tick_duration.observe(seconds)
    if observations is not None and observations.git is not None and observations.git.error:
        metrics.git_errors.inc()
    outcome = {id(action): ok for action, ok, _ in results}
    waiting = {(p.role, p.kind): p.since for p in before.handoff.pending_pings}
    for action in actions:
        ok = outcome.get(id(action), True)
        if not ok:
            metrics.action_failures.labels(type(action).__name__).inc()
        if isinstance(action, EmitEvent):
            _record_event(metrics, action, before, started)
            continue
        tier = heal_tier(action)
        if tier is not None and action.role is not None:
            metrics.heals.labels(role=action.role, tier=tier).inc()
        if isinstance(action, SendText) and action.purpose == "ping" and action.role is not None:
            kind = _ping_kind(action)
            if not ok:
                metrics.ping_failures.labels(role=action.role, kind=kind).inc()
                continue
            metrics.pings.labels(role=action.role, kind=kind).inc()
            since = waiting.get((action.role, kind), started)
            metrics.ping_latency.labels(kind).observe(max(0.0, (finished - since).total_seconds()))
    notes, old = after.notifications, before.notifications
    for outcome, count in (("delivered", notes.delivered - old.delivered), ("failed", notes.failed - old.failed)):
        if count > 0:
            metrics.notifications.labels(outcome).inc(count)
    metrics.set_status(loop, after)


def _record_event(metrics: LoopMetrics, event: EmitEvent, before: LoopPhaseStatus, now: datetime) -> None:
    if event.kind == "circuit-open" and event.role is not None:
        metrics.circuit_opens.labels(role=event.role).inc()
    elif event.kind in ("advance", "complete") and event.rule == "done.marker":
        metrics.advances.labels(event.kind).inc()
        if before.current is not None and before.current.started_at is not None:
            metrics.phase_duration.observe(max(0.0, (now - before.current.started_at).total_seconds()))


def serve(metrics: LoopMetrics, port: int, addr: str = "127.0.0.1") -> Any:
    """Serve ``/metrics`` from a daemon thread; returns the server (``.server_port``, ``.shutdown()``).

    prometheus_client's own WSGI server: no reason to write an exporter.
    """
    server, _thread = start_http_server(port, addr=addr, registry=metrics.registry)
    log.info("metrics on http://%s:%d/metrics", addr, server.server_port)
    return server

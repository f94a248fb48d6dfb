"""The fleet gauges (agents by role and state, open limit windows by class) are the sum of every
LoopPhase's latest share, kept as running totals: replacing one LoopPhase's share, or forgetting
it, moves exactly its part, whatever the others hold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from loopphase.api.status import AgentStatus, LimitWindow, LoopPhaseStatus
from loopphase.metrics.series import LoopMetrics
from prometheus_client import CollectorRegistry

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def status(**states: str) -> LoopPhaseStatus:
    st = LoopPhaseStatus()
    for role, state in states.items():
        agent = AgentStatus(state=state)
        if state == "Limited":
            agent.limit = LimitWindow(armed_at=NOW, until=NOW + timedelta(hours=1),
                                      limit_class="weekly", rule="limit.test", excerpt="x",
                                      parsed=True)
        st.agents[role] = agent
    return st


def gauge(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def windows(registry: CollectorRegistry, limit_class: str) -> float:
    value = registry.get_sample_value("loopphase_limit_windows_open", {"class": limit_class})
    return 0.0 if value is None else value


def test_gauges_follow_each_loops_latest_share() -> None:
    registry = CollectorRegistry()
    metrics = LoopMetrics(registry=registry)
    for i in range(5):
        metrics.set_status(f"ns/l{i}", status(builder="Active", adversary="Idle"))
    assert gauge(registry, "loopphase_agents", role="builder", state="Active") == 5
    metrics.set_status("ns/l1", status(builder="Limited", adversary="Idle"))
    metrics.set_status("ns/l1", status(builder="Limited", adversary="Idle"))  # unchanged
    assert gauge(registry, "loopphase_agents", role="builder", state="Active") == 4
    assert gauge(registry, "loopphase_agents", role="builder", state="Limited") == 1
    assert windows(registry, "weekly") == 1
    metrics.forget("ns/l1")
    metrics.forget("ns/gone-never-seen")
    assert gauge(registry, "loopphase_agents", role="builder", state="Limited") == 0
    assert windows(registry, "weekly") == 0
    assert gauge(registry, "loopphase_agents", role="adversary", state="Idle") == 4
    metrics.set_status("ns/l0", LoopPhaseStatus())
    assert gauge(registry, "loopphase_agents", role="builder", state="Active") == 3


def test_every_known_counter_series_exists_at_zero_before_its_first_event() -> None:
    """Alerts such as ``increase(loopphase_phase_advances_total[24h]) == 0`` or
    ``increase(loopphase_circuit_opens_total[30m]) > 0`` need the series before the first
    event: a series born at 1 hides that first increase, and a missing one is no result."""
    registry = CollectorRegistry()
    LoopMetrics(registry=registry)
    for name, labels in [
        ("loopphase_phase_advances_total", {"kind": "advance"}),
        ("loopphase_phase_advances_total", {"kind": "complete"}),
        ("loopphase_circuit_opens_total", {"role": "builder"}),
        ("loopphase_heal_actions_total", {"role": "adversary", "tier": "restart-cold"}),
        ("loopphase_pings_delivered_total", {"role": "adversary", "kind": "claim"}),
        ("loopphase_ping_failures_total", {"role": "builder", "kind": "review"}),
        ("loopphase_action_failures_total", {"action": "StartAgent"}),
    ]:
        assert registry.get_sample_value(name, labels) == 0.0, (name, labels)

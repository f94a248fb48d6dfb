"""Derived status: conditions (Kubernetes API conventions), display phase, printer mirrors.

Everything here is derived from the rest of the status, so it is recomputed on every reconcile
(one source of truth per fact). Messages carry no ticking durations, so an unchanged world
yields an unchanged status and no patch. ``lastTransitionTime`` moves only when a condition's
status flips.
"""

from __future__ import annotations

from datetime import datetime

from loopphase.api.spec import LoopPhaseSpec
from loopphase.api.status import AgentStatus, Condition, ConditionType, LoopPhaseStatus
from loopphase.core import approval
from loopphase.core.holds import describe as describe_hold
from loopphase.core.phases import progress

RUNNING = {"Active", "Idle", "Waiting", "Limited"}
# How reconcile starts the reason of a Limited agent that has no running process (its host is
# gone, or its agent exited, inside a window or hold): Limited, but not running (not Ready).
HOST_GONE = "host gone"
NOT_RUNNING = "agent not running"


def _trouble(agent: AgentStatus) -> str:
    """What the Stalled condition says of one agent: its state's reason, else its heal."""
    if agent.reason:
        return agent.reason
    heal = agent.heal
    return f"{agent.state}, heal tier {heal.tier} ({heal.problem or 'no problem recorded'}" + (
        f": {heal.reason})" if heal.reason else ")")


def is_running(agent: AgentStatus) -> bool:
    """The agent's process runs (Limited counts only while it has one)."""
    if agent.state not in RUNNING:
        return False
    return not (agent.state == "Limited" and agent.reason.startswith((HOST_GONE, NOT_RUNNING)))


def set_condition(
    status: LoopPhaseStatus,
    type_: ConditionType,
    value: bool,
    reason: str,
    message: str,
    now: datetime,
) -> None:
    flag = "True" if value else "False"
    existing = status.condition(type_)
    if existing is None:
        status.conditions.append(
            Condition(type=type_, status=flag, reason=reason, message=message,
                      last_transition_time=now, observed_generation=status.observed_generation)
        )
        return
    if (existing.status, existing.reason, existing.message, existing.observed_generation) == (
        flag, reason, message, status.observed_generation
    ):
        return  # unchanged (the usual tick): no attribute writes
    if existing.status != flag:
        existing.last_transition_time = now
    existing.status = flag
    existing.reason = reason
    existing.message = message
    existing.observed_generation = status.observed_generation


def finalize(spec: LoopPhaseSpec, st: LoopPhaseStatus, now: datetime) -> None:
    complete = st.completed_at is not None
    index = st.current.index if st.current else 0
    st.progress = progress(spec, index, complete)
    wanted = [] if complete or spec.suspend else spec.roles()
    agents = st.agents
    running = [r for r in wanted if agents.get(r) and is_running(agents[r])]
    st.ready = f"{len(running)}/{len(wanted)}"
    st.builder = agents["builder"].state if "builder" in agents else None
    st.adversary = agents["adversary"].state if "adversary" in agents else None

    limited = sorted(r for r, a in agents.items() if a.state == "Limited")
    troubled = sorted(
        r for r, a in agents.items()
        if r in wanted and (a.state in {"Dead", "Fatal"} or a.heal.tier > 0)
    )
    circuit = sorted(r for r, a in agents.items() if a.heal.circuit_open)
    remote_error = st.handoff.remote_error
    old_phase = [
        r for r in ("builder", "adversary")
        if r in agents and agents[r].state == "Stopped" and r in wanted
    ]

    set_condition(st, "Complete", complete, "SequenceComplete" if complete else "InProgress",
                  "every phase is DONE" if complete else "", now)
    set_condition(
        st, "Progressing", not complete and not spec.suspend,
        "Suspended" if spec.suspend else ("SequenceComplete" if complete else "PhaseInProgress"),
        "" if complete else f"phase {st.current.id if st.current else '?'} ({st.progress} done)",
        now,
    )
    set_condition(st, "Ready", bool(wanted) and len(running) == len(wanted),
                  "AgentsRunning" if wanted and len(running) == len(wanted) else "AgentsNotRunning",
                  f"{st.ready} agents running", now)
    limit_msg = "; ".join(
        f"{r} until {agents[r].limit.until.isoformat()}" for r in limited if agents[r].limit
    )
    set_condition(st, "Limited", bool(limited), "UsageLimitWindow" if limited else "NoLimit",
                  limit_msg or (", ".join(limited) if limited else ""), now)
    stalled_msg = "; ".join(f"{r}: {_trouble(agents[r])}" for r in troubled)
    set_condition(st, "Stalled", bool(troubled), "Healing" if troubled else "NoStall", stalled_msg, now)
    refused = sorted(r for r, a in agents.items() if r in wanted and a.start_error)
    degraded_bits = [f"{r}: circuit open" for r in circuit]
    degraded_bits += [f"{r}: start refused: {agents[r].start_error}" for r in refused]
    if remote_error:
        degraded_bits.append(f"remote unreachable: {remote_error}")
    oversized = st.handoff.oversized_files
    for path, size in sorted(oversized.items()):
        degraded_bits.append(
            f"{path} is {size} bytes, over spec.repo.maxFileBytes ({spec.repo.max_file_bytes}): not read"
        )
    reason = (
        "CircuitOpen" if circuit
        else "StartRefused" if refused
        else "RemoteUnreachable" if remote_error
        else "FileTooLarge" if oversized
        else "Healthy"
    )
    set_condition(st, "Degraded", bool(degraded_bits), reason, "; ".join(degraded_bits), now)
    attention = _attention(spec, st, wanted, now)
    _holds(st, now)

    if complete:
        st.phase, st.message = "Complete", "every phase is DONE"
    elif spec.suspend:
        st.phase, st.message = "Suspended", "spec.suspend is true"
    elif attention:
        st.phase, st.message = "NeedsAttention", attention
    elif circuit or refused or remote_error or oversized:
        st.phase, st.message = "Degraded", "; ".join(degraded_bits)
    elif old_phase:
        st.phase, st.message = "Advancing", f"switching {', '.join(old_phase)} to phase {st.current.id if st.current else '?'}"
    elif limited or st.holds:
        held = "; ".join(describe_hold(h) for h in st.holds)
        st.phase, st.message = "Limited", f"usage limit: {limit_msg or held}"
    elif running:
        st.phase, st.message = "Running", f"phase {st.current.id if st.current else '?'}"
    else:
        st.phase, st.message = "Pending", "starting agents"
    approval.finalize(st, now, set_condition)


def _attention(spec: LoopPhaseSpec, st: LoopPhaseStatus, wanted: list[str], now: datetime) -> str:
    """The NeedsAttention condition (reason: the first such agent's AttentionReason; message:
    every such agent's whole cause) and the printer mirror. Returns the message ('' if none)."""
    needing = [(r, a.attention) for r, a in sorted(st.agents.items())
               if r in wanted and a.attention is not None]
    message = "; ".join(att.message for _, att in needing)
    st.needs_attention = ", ".join(f"{r}:{att.reason}" for r, att in needing) or None
    reason = needing[0][1].reason if needing else "NoneNeeded"
    set_condition(st, "NeedsAttention", bool(needing), reason, message, now)
    return message


def _holds(st: LoopPhaseStatus, now: datetime) -> None:
    """AccountHold: a hard limit on one agent of an account holds every agent of it."""
    message = "; ".join(describe_hold(h) for h in st.holds)
    set_condition(st, "AccountHold", bool(st.holds),
                  "HardLimitOnAccount" if st.holds else "NoHold", message, now)


def mark_phase_missing(st: LoopPhaseStatus, now: datetime) -> None:
    """The current phase vanished from the spec: nothing acts until the user decides."""
    message = (
        f"current phase {st.current.id if st.current else '?'!r} is no longer in spec.phases: "
        "put it back, or set spec.startAt to the phase to continue with"
    )
    set_condition(st, "Degraded", True, "PhaseNotInSpec", message, now)
    st.phase, st.message = "Degraded", message

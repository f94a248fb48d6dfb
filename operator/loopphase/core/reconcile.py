"""``reconcile(spec, status, observations, now) -> (actions, new status)``: the whole brain.

Pure and deterministic: everything arrives as data, everything leaves as data, ``now`` is an
argument. Idempotent: reconciling the returned status against the same observations yields no
new actions, because every action is guarded by state it records (start/stop requested at,
heal last action, pending pings consumed, probe timestamps).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from loopphase.api.base import clip
from loopphase.api.spec import ROLES, LoopPhaseSpec, LoopRole, Role, render_text
from loopphase.api.status import (
    AccountHold,
    AgentStatus,
    Attention,
    CurrentPhase,
    HandoffStatus,
    HealState,
    LimitWindow,
    LoopPhaseStatus,
    PendingPing,
)
from loopphase.core import approval, conditions, holds
from loopphase.core.actions import (
    Action,
    RecreateHost,
    RestartAgent,
    SendText,
    StartAgent,
    StopAgent,
)
from loopphase.core.attention import (
    OWNED,
    Finding,
    circuit_finding,
    screen_finding,
    spend_finding,
)
from loopphase.core.conditions import HOST_GONE, NOT_RUNNING
from loopphase.core.decision import Decision, copy_for_update
from loopphase.core.files import inbox_name, resolve
from loopphase.core.handoff import queue_ping, scan_commits, scan_inboxes
from loopphase.core.heal import COLD, NUDGE, RECREATE, TIER_KIND, WARM, Problem, healed, step_heal
from loopphase.core.hooks import hook_reading
from loopphase.core.limits import LimitStep, step_limit
from loopphase.core.observations import AgentObservation, GitObservation, Observations
from loopphase.core.phases import judge_done
from loopphase.core.screen import Match, ScreenReading, already_typed, classify, typed_in

LOOP_ROLES: tuple[LoopRole, ...] = ("builder", "adversary")
DELIVERABLE = {"Active", "Idle", "Waiting"}
START_TIMEOUT = timedelta(seconds=180)
STOP_RETRY = timedelta(seconds=60)
PING_MAX_ATTEMPTS = 5
START_ERROR_MAX = 500  # characters of the platform's message kept in status
COMPACT_TEXT = "/compact"
POISONED = frozenset({"fatal", "context-full"})  # conversations never resumed warm


def reconcile(
    spec: LoopPhaseSpec,
    status: LoopPhaseStatus,
    observations: Observations,
    now: datetime,
    *,
    generation: int | None = None,
    default_tz: str = "UTC",
    namespace: str | None = None,
) -> tuple[list[Action], LoopPhaseStatus]:
    """One decision pass. ``namespace``: the Kubernetes namespace (derives each agent's default
    account from its credentials Secret); None for a local run (every agent: ``local``)."""
    d = Decision(copy_for_update(status), now)
    st = d.status
    if generation is not None:
        st.observed_generation = generation
    tz = ZoneInfo(spec.time_zone or default_tz)

    phase_ok = _ensure_phase(spec, d)
    if phase_ok:
        if st.completed_at is None and spec.suspend:
            _suspend(spec, observations, d)
        elif st.completed_at is None:
            if st.suspended_at is not None:
                st.suspended_at = None
                d.note("resume", None, "spec.suspend", "suspend cleared: restoring the loop")
            approval.apply_requests(spec, observations.approvals, d)
            if observations.git is not None:
                _process_git(spec, observations.git, d)
        if st.completed_at is not None:
            _stop_everything(spec, observations, d, "sequence complete: stopping every role")
        elif not spec.suspend and not _hold_for_approval(spec, observations, d):
            previous = list(st.holds)
            external = observations.account_holds
            for role in spec.roles():
                if role in st.agents or role in observations.agents:
                    agent = st.agents.setdefault(role, AgentStatus())
                    account = holds.account_of(spec, role, namespace)
                    if agent.account != account:
                        agent.account = account
            readings = _read_all(spec, st, observations, now, tz)
            # What holds one agent is the others' windows as they stand after this tick (a
            # preview, so the order roles are converged in does not matter).
            ahead, steps = _preview_windows(spec, st, observations, readings, now, tz)
            for role in _roles_to_converge(spec, st, observations):
                _converge_role(spec, role, observations.agents.get(role), d, tz, namespace,
                               external, readings.get(role), ahead, steps.get(role))
            st.holds = holds.compute(spec, st, external, previous, now)
            _note_holds(d, previous)
            _deliver_rejection(d)
            _deliver_pings(spec, d)
            _wake_orchestrator(spec, d)
    conditions.finalize(spec, st, now)
    if not phase_ok:
        conditions.mark_phase_missing(st, now)
    return d.actions, st


# -- phase bookkeeping ------------------------------------------------------------------------


def _ensure_phase(spec: LoopPhaseSpec, d: Decision) -> bool:
    """Initialise, honour an explicit startAt, re-sync the index by id. False = cannot act."""
    st = d.status
    if st.current is None:
        index = spec.phase_index(spec.start_at) if spec.start_at else 0
        st.current = CurrentPhase(index=index or 0, id=spec.phases[index or 0].id, started_at=d.now)
        st.applied_start_at = spec.start_at
        d.note("start", None, "phase.init", f"starting at phase {st.current.id}")
        return True
    if spec.start_at is not None and spec.start_at != st.applied_start_at:
        index = spec.phase_index(spec.start_at)
        assert index is not None  # validated by the spec model
        old = st.current.id
        _enter_phase(spec, d, index)
        st.applied_start_at = spec.start_at
        d.note("advance", None, "spec.startAt", f"explicit jump from phase {old} to {st.current.id}")
        return True
    index = spec.phase_index(st.current.id)
    if index is None:
        return False  # reported by conditions.mark_phase_missing
    st.current.index = index
    return True


def _enter_phase(spec: LoopPhaseSpec, d: Decision, index: int) -> None:
    st = d.status
    st.current = CurrentPhase(index=index, id=spec.phases[index].id, started_at=d.now)
    handoff = st.handoff
    st.handoff = HandoffStatus(
        last_seen_sha=handoff.last_seen_sha,
        inbox_hashes=handoff.inbox_hashes,
        last_ping_at=handoff.last_ping_at,
    )


def _process_git(spec: LoopPhaseSpec, git: GitObservation, d: Decision) -> None:
    st = d.status
    handoff = st.handoff
    if not git.reachable:
        handoff.remote_error = git.error or "remote unreachable"
        return
    handoff.remote_error = None
    git = _drop_oversized(spec, git, d)
    if git.force_pushed:
        d.note(
            "force-push", None, "git.force-push",
            f"{spec.repo.branch} was rewritten: cursor {handoff.last_seen_sha} is not an ancestor "
            f"of {git.head}; re-baselined there (commits in between were not relayed)",
            warning=True,
        )
    elif handoff.last_seen_sha is not None and git.head != handoff.last_seen_sha:
        # Commits are relative to the cursor; a replay at the same head was already relayed.
        for ping in scan_commits(spec, handoff, git.commits, d.now):
            queue_ping(handoff, ping)
    handoff.last_seen_sha = git.head or handoff.last_seen_sha
    for ping in scan_inboxes(spec, handoff, git.files, d.now):
        queue_ping(handoff, ping)
    if spec.timing.done_on_push or _heavy_tick_due(spec, d):
        _check_done(spec, git, d)


def _drop_oversized(spec: LoopPhaseSpec, git: GitObservation, d: Decision) -> GitObservation:
    """Files over ``repo.maxFileBytes`` count as absent; each newly seen one is a warning and
    stays in ``handoff.oversizedFiles`` (the Degraded condition) until it shrinks."""
    cap = spec.repo.max_file_bytes
    oversized = dict(git.oversized)
    for path, content in git.files.items():
        if content is not None and len(content) * 4 > cap and len(content.encode("utf-8")) > cap:
            oversized[path] = len(content.encode("utf-8"))
    handoff = d.status.handoff
    for path, size in oversized.items():
        if path not in handoff.oversized_files:
            d.note("warning", None, "git.file-too-large",
                   f"{path} is {size} bytes at {(git.head or '')[:12]}, over spec.repo.maxFileBytes "
                   f"({cap}): not read; shrink it or raise the cap", warning=True)
    if handoff.oversized_files != oversized:
        handoff.oversized_files = oversized
    if not oversized:
        return git
    files = {p: (None if p in oversized else c) for p, c in git.files.items()}
    return dataclasses.replace(git, files=files)


def _heavy_tick_due(spec: LoopPhaseSpec, d: Decision) -> bool:
    """With doneOnPush false, DONE is only looked at every heavyInterval (reference cadence)."""
    last = d.status.last_heavy_check_at
    if last is not None and d.now - last < timedelta(seconds=spec.timing.heavy_interval):
        return False
    d.status.last_heavy_check_at = d.now
    return True


def _check_done(spec: LoopPhaseSpec, git: GitObservation, d: Decision) -> None:
    st = d.status
    assert st.current is not None
    phase = spec.phases[st.current.index]
    path, content = resolve(git.files, spec.repo.state_dir, phase.status_file)
    verdict = judge_done(spec, content, st.handoff)
    if verdict.blocked:
        if st.current.done_blocked_sha != git.head:
            st.current.done_blocked_sha = git.head
            d.note("warning", "builder", "done.precondition", f"{path}: {verdict.blocked}", warning=True)
        return
    if not verdict.done:
        return
    where = f"{spec.done.marker!r} in {path} at {(git.head or '')[:12]} on {spec.repo.branch}"
    if approval.gate(phase, git.head, where, d):
        return
    st.current.done_commit = git.head
    nxt = st.current.index + 1
    if nxt < len(spec.phases):
        old = phase.id
        _enter_phase(spec, d, nxt)
        d.note("advance", None, "done.marker", f"phase {old} DONE ({where}); advancing to {st.current.id}")
    else:
        st.completed_at = d.now
        d.note("complete", None, "done.marker", f"last phase {phase.id} DONE ({where}); sequence complete")


# -- per-role convergence ---------------------------------------------------------------------


def _roles_to_converge(spec: LoopPhaseSpec, st: LoopPhaseStatus, obs: Observations) -> list[Role]:
    wanted = spec.roles()
    extra = [r for r in ROLES if r not in wanted and (r in st.agents or r in obs.agents)]
    return [*wanted, *extra]


def _set_state(a: AgentStatus, state: str, now: datetime, reason: str = "") -> None:
    if a.state != state:
        a.state = state  # type: ignore[assignment]
        a.since = now
    a.reason = reason


def _cannot_start(role: Role, a: AgentStatus, cause: str, d: Decision) -> None:
    """A start that cannot succeed until a human acts: NeedsAttention(CannotStart) at once,
    with the whole cause; nothing is started, healed or counted towards the circuit."""
    a.start_requested_at = None
    _set_state(a, "NeedsAttention", d.now, cause)
    if a.attention is None or a.attention.reason != "CannotStart" or a.attention.message != cause:
        a.attention = Attention(reason="CannotStart", message=cause, rule="host.cannot-start", since=d.now)
        d.note("needs-attention", role, "host.cannot-start", cause, warning=True)


def _host_start_pending(spec: LoopPhaseSpec, obs: AgentObservation, a: AgentStatus, now: datetime) -> bool:
    """Whether a host the platform is still preparing is within ``timing.hostStartTimeout``,
    counted from the host's creation (or our start request when the host does not say)."""
    since = obs.started_at or a.start_requested_at
    return since is not None and now - since < timedelta(seconds=spec.timing.host_start_timeout)


def _converge_role(
    spec: LoopPhaseSpec, role: Role, obs: AgentObservation | None, d: Decision, tz: ZoneInfo,
    namespace: str | None, external: tuple[AccountHold, ...], reading: ScreenReading | None,
    ahead: dict[Role, LimitWindow | None], step: LimitStep | None,
) -> None:
    if obs is None:
        return  # not observed this tick: decide nothing rather than guess
    a = d.status.agents.setdefault(role, AgentStatus())
    hold = None
    if role in spec.roles():  # its account was set before the roles' passes
        hold = holds.held_by_others(spec, d.status, role, external, d.now, windows=ahead)
    _converge_agent(spec, role, obs, a, d, tz, hold, reading, step)
    if d.status.agents.get(role) is a:
        _settle_attention(role, a, d)


def _attend(
    d: Decision, role: Role, a: AgentStatus, finding: Finding, *, event: bool = True,
    pause: bool = True,
) -> None:
    """NeedsAttention: one Warning Event when it begins (or its reason changes), the stall clock
    paused (``pause``), nothing typed, no heal; re-checked on every tick."""
    current = a.attention
    if current is None or current.reason != finding.reason:
        a.attention = Attention(reason=finding.reason, message=finding.message, rule=finding.rule,
                                excerpt=finding.excerpt, since=d.now)
        if event:
            d.note("needs-attention", role, finding.rule, finding.message, warning=True)
    elif (current.message, current.rule, current.excerpt) != (finding.message, finding.rule, finding.excerpt):
        a.attention = current.model_copy(
            update={"message": finding.message, "rule": finding.rule, "excerpt": finding.excerpt}
        )
    if pause:
        a.idle_since = None
    _set_state(a, "NeedsAttention", d.now, f"{finding.reason}: {finding.excerpt}")
    d.attended.add(role)


def _settle_attention(role: Role, a: AgentStatus, d: Decision) -> None:
    """After the role's pass: an open circuit on an agent not working needs a human; any other
    attention this module owns and did not renew this tick is over."""
    if role in d.attended:
        return
    if a.heal.circuit_open and a.state in {"Idle", "Dead", "Fatal"}:
        # The circuit-open Warning Event was the announcement: no second one.
        _attend(d, role, a, circuit_finding(role, a), event=False, pause=False)
        return
    if a.attention is not None and a.attention.reason in OWNED:
        why = "agent working again" if a.state == "Active" else f"now {a.state}"
        d.note("attention-cleared", role, "attention.cleared",
               f"{a.attention.reason} resolved ({why}); normal supervision resumes")
        a.attention = None


def _converge_agent(
    spec: LoopPhaseSpec, role: Role, obs: AgentObservation, a: AgentStatus, d: Decision,
    tz: ZoneInfo, hold: AccountHold | None, reading: ScreenReading | None,
    step_ahead: LimitStep | None,
) -> None:
    """One role's pass. ``hold``: the account hold other agents' limits put on this one;
    ``reading``/``step_ahead``: this tick's reading and limit step, when already computed (the
    step is pure and nothing before it in this pass changes its inputs)."""
    st, now = d.status, d.now
    assert st.current is not None
    if role not in spec.roles():
        if obs.present:
            _request_stop(d, role, a, "role removed from spec")
        else:
            st.agents.pop(role, None)
        return
    if obs.cannot_start is not None:
        _cannot_start(role, a, obs.cannot_start, d)
        return
    if a.attention is not None and a.attention.reason == "CannotStart":
        d.note("attention-cleared", role, "host.can-start", "the reason it could not start is gone")
        a.attention = None
        a.heal = HealState()
    target = st.current.index
    window_open = a.limit is not None and now < a.limit.until

    if obs.present and role != "orchestrator" and obs.phase_index not in (None, target):
        if a.limit is not None:
            working = obs.alive and classify(obs.pane, now, tz).active is not None
            if window_open and not working:
                _set_state(a, "Limited", now, "previous phase's agent is in a limit window; stop deferred")
                return
            why = "agent active again" if working else "window over"
            d.note("limit-lifted", role, "limit.phase-ended", f"{why}; the previous phase's agent can stop")
            a.limit = None
        _request_stop(d, role, a, f"running phase index {obs.phase_index}, current is {target}")
        return

    if not obs.present:
        a.stop_requested_at = None
        if window_open:
            _set_state(a, "Limited", now, f"{HOST_GONE} inside a limit window; it carries over")
            return
        if a.limit is not None:
            d.note("limit-lifted", role, "limit.expired-no-host", "limit window over; host restarts")
            a.limit = None
        if hold is not None:
            _set_state(a, "Limited", now, f"{HOST_GONE} during an account hold ({holds.describe(hold)}); not started until it lifts")
            return
        if a.start_requested_at is not None and now - a.start_requested_at < START_TIMEOUT:
            refused = f"start refused: {a.start_error}" if a.start_error else ""
            _set_state(a, "Starting", now, refused or f"{a.spawn_mode} start requested")
            return
        resumable = (
            a.phase_index == target and a.spawn_mode is not None and a.state != "Fatal"
            and a.context_full_since is None and a.heal.problem not in POISONED
        )
        mode: Literal["warm", "cold"] = "warm" if resumable else "cold"
        if resumable:
            a.restarts += 1
        d.act(
            StartAgent(role=role, rule="converge.no-host", reason=f"no host; starting {mode}",
                       phase_index=target, mode=mode),
            "start",
        )
        _mark_started(a, now, target, mode)
        return

    a.stop_requested_at = None
    a.start_error = ""  # its host exists: whatever refused an earlier start has passed
    a.pod = obs.pod_name or a.pod
    starting = a.start_requested_at is not None and now - a.start_requested_at < timedelta(
        seconds=spec.timing.start_grace
    )
    if obs.error is not None or not obs.alive:
        if starting:
            _set_state(a, "Starting", now, obs.error or "agent starting")
            return
        if obs.host_pending and _host_start_pending(spec, obs, a, now):
            # Slow image pulls and volume binding are the platform's business: a recreate
            # would only start them over. Shown as Starting with the platform's reason.
            _set_state(a, "Starting", now, obs.error or "host being prepared")
            return
        if window_open:
            _set_state(a, "Limited", now, f"{NOT_RUNNING} inside a limit window; waiting")
            return
        if hold is not None:
            _set_state(a, "Limited", now, f"{NOT_RUNNING} during an account hold ({holds.describe(hold)}); waiting")
            return
        problem: Problem = "unreachable" if obs.error is not None else "dead"
        _heal(spec, role, a, d, problem, obs.error or "agent process is not running", obs.pane)
        return

    if not starting:
        a.start_requested_at = None  # the start completed: the host runs the agent
    a.started_at = obs.started_at or a.started_at
    a.session_id = obs.session_id or a.session_id
    if reading is None:
        reading = _read(obs, a, now, tz)
    blocked = screen_finding(role, reading)
    if blocked is not None:
        # A dialog takes whatever is typed as its answer, a dead login answers nothing: no
        # probe, nudge or ping (they stay queued) and no heal; the limit window keeps its clock.
        _attend(d, role, a, blocked)
        return
    probe_text = _probe_text(spec, role, st)
    resume_by = _auto_resume_deadline(spec, a, reading)
    step = step_ahead if step_ahead is not None else _limit_step(spec, role, st, a, reading, now)
    _remember_stale_banners(a, reading, step)
    a.limit = _with_class(step.window, reading)
    for note in step.notes:
        if note.kind == "probe":
            d.act(SendText(role=role, rule=note.rule, reason=note.reason, text=probe_text, purpose="probe"), "probe")
        else:
            d.note(note.kind, role, note.rule, note.reason, warning=note.warning)  # type: ignore[arg-type]
    if step.limited:
        a.idle_since = None
        spend = spend_finding(role, a)
        if spend is not None:
            _attend(d, role, a, spend)  # no reset to wait for: a human raises the limit
            return
        why = a.limit.excerpt if a.limit else ""
        if resume_by is not None and now < resume_by and reading.auto_resume is not None:
            why = (f"the CLI resumes by itself ({reading.auto_resume.excerpt}); probed only if "
                   f"nothing resumed by {resume_by.isoformat()}")
        _set_state(a, "Limited", now, why)
        return

    if hold is not None and reading.active is None:
        # Another agent on this account hit a hard limit: whatever is typed here only burns
        # turns into the same wall. Stall clock paused; pings stay queued.
        a.idle_since = None
        _set_state(a, "Limited", now, f"account hold: {holds.describe(hold)}")
        return

    if reading.active is not None:
        if a.state != "Active":
            a.active_since = now  # on the transition only: no status write per working tick
        a.idle_since = None
        a.start_requested_at = None  # seen working: the start grace is over
        a.waiting_until = a.waiting_declared = None
        a.context_full_since = None  # working again: the conversation has room (compacted)
        if a.heal.circuit_open:
            d.note("resume", role, "heal.circuit-closed", "agent working again; healing re-enabled")
        a.heal = healed(a.heal)
        _set_state(a, "Active", now, reading.active.rule)
        return

    if reading.fatal is not None:
        _heal(spec, role, a, d, "fatal", f"{reading.fatal.rule}: {reading.fatal.excerpt}", obs.pane)
        return
    if starting:
        if obs.pane.strip() and _started_after_request(obs, a):
            # Up and drawn: it can take text (pings), but it is not judged idle yet.
            _set_state(a, "Idle", now, "just started (start grace)")
        else:
            _set_state(a, "Starting", now, "agent starting")
        return
    if reading.context_full is not None:
        # Judged past the start grace only: a fresh start may still show the old screen.
        _context_full(spec, role, a, d, reading.context_full, obs.pane)
        return

    if a.idle_since is None:
        a.idle_since = now
    if role == "orchestrator":
        _set_state(a, "Idle", now, "between supervision passes")  # idle by design
        return
    last_activity = max(t for t in (a.idle_since, obs.last_change_at, a.heal.last_action_at) if t)
    if reading.waiting_until is not None:
        if a.waiting_declared != reading.waiting_until:
            a.waiting_declared = reading.waiting_until
            cap = now + timedelta(seconds=spec.timing.max_declared_wait)
            a.waiting_until = min(reading.waiting_until, cap)
        assert a.waiting_until is not None
        deadline = a.waiting_until + timedelta(seconds=spec.timing.wait_grace)
        if now <= deadline:
            _set_state(a, "Waiting", now, f"declared wait until {a.waiting_until.isoformat()}")
            return
        if last_activity < deadline:
            over = int((now - a.waiting_until).total_seconds())
            _heal(spec, role, a, d, "stalled", f"past its WAITING-UNTIL by {over}s", obs.pane)
            return
    idle_for = (now - last_activity).total_seconds()
    threshold = spec.stall_idle_for(role)
    if idle_for >= threshold:
        _heal(spec, role, a, d, "stalled", f"idle {int(idle_for)}s (threshold {int(threshold)}s)", obs.pane)
        return
    _set_state(a, "Idle", now, "")


def _read(obs: AgentObservation, a: AgentStatus | None, now: datetime, tz: ZoneInfo) -> ScreenReading:
    """The screen's reading, with what a StopFailure hook adds when the screen shows neither
    work nor a limit (its message read by the same classifier: core/hooks.py)."""
    return hook_limit(classify(obs.pane, now, tz), obs, a.active_since if a is not None else None, now, tz)


def _read_all(
    spec: LoopPhaseSpec, st: LoopPhaseStatus, obs: Observations, now: datetime, tz: ZoneInfo
) -> dict[Role, ScreenReading]:
    """One reading per running agent of the current phase (classified once per tick)."""
    out: dict[Role, ScreenReading] = {}
    assert st.current is not None
    for role in spec.roles():
        o = obs.agents.get(role)
        if o is None or not o.present or not o.alive or o.error is not None:
            continue
        if role != "orchestrator" and o.phase_index not in (None, st.current.index):
            continue
        out[role] = _read(o, st.agents.get(role), now, tz)
    return out


def _preview_windows(
    spec: LoopPhaseSpec, st: LoopPhaseStatus, obs: Observations,
    readings: dict[Role, ScreenReading], now: datetime, tz: ZoneInfo,
) -> tuple[dict[Role, LimitWindow | None], dict[Role, LimitStep]]:
    """Each role's limit window as this tick will leave it (what ``step_limit`` will decide),
    for the account holds other roles see; and the limit steps computed for it (reused by the
    role's pass)."""
    out: dict[Role, LimitWindow | None] = {}
    steps: dict[Role, LimitStep] = {}
    assert st.current is not None
    for role in spec.roles():
        a = st.agents.get(role)
        window = a.limit if a is not None else None
        reading = readings.get(role)
        o = obs.agents.get(role)
        if o is None:
            out[role] = window
        elif o.present and role != "orchestrator" and o.phase_index not in (None, st.current.index):
            # The previous phase's agent: its window stays only while open and it is not working.
            working = o.alive and classify(o.pane, now, tz).active is not None
            out[role] = window if window is not None and now < window.until and not working else None
        elif not o.present:  # the no-host path lifts a window that is over
            out[role] = window if window is not None and now < window.until else None
        elif reading is None or screen_finding(role, reading) is not None:
            # Not running, unreachable, starting, or a dialog/login: the window is left as it is.
            out[role] = window
        else:
            assert a is not None  # a reading exists only for an agent with a status
            steps[role] = _limit_step(spec, role, st, a, reading, now)
            out[role] = _with_class(steps[role].window, reading)
    return out, steps


def _probe_text(spec: LoopPhaseSpec, role: Role, st: LoopPhaseStatus) -> str:
    assert st.current is not None
    return render_text(spec.texts.limit_probe, role=role, phase=st.current.id, inbox="", kickoff="")


def _limit_step(
    spec: LoopPhaseSpec, role: Role, st: LoopPhaseStatus, a: AgentStatus, reading: ScreenReading,
    now: datetime,
) -> LimitStep:
    """The limit window's step for this tick (pure; the same call for the preview and the pass)."""
    if a.limit is None and reading.limit is not None and reading.limit.excerpt in a.stale_banners:
        # The box a lifted window left on screen (Claude Code keeps "Usage limit reached ·
        # continuing automatically at 2:55pm" in view after it resumed): not a new limit.
        reading = dataclasses.replace(reading, limit=None, limit_class=None, reset=None)
    resume_by = _auto_resume_deadline(spec, a, reading)
    return step_limit(
        a.limit, reading, now, spec.timing,
        probe_already_typed=typed_in(reading.input_area, _probe_text(spec, role, st)),
        probe_deferred=resume_by is not None and now < resume_by,
    )


STALE_BANNERS_KEPT = 8


def _remember_stale_banners(a: AgentStatus, reading: ScreenReading, step: LimitStep) -> None:
    """Limit banners in view when a window lifted because the agent worked (and, after that,
    while it keeps working) are stale: the screen keeps them in view after the CLI resumed.
    They are ignored for arming until no limit banner is in the region any more. A new limit
    prints a new banner (a new reset), which is not in the set."""
    if reading.limit is None:
        if a.stale_banners:
            a.stale_banners = []
        return
    lifted_working = reading.active is not None and any(
        n.kind == "limit-lifted" for n in step.notes)
    # After a lift, banners in view while the agent keeps working are the same leftovers drawn
    # in other lines (the CLI restates a limit in two or three places).
    still_working = reading.active is not None and bool(a.stale_banners)
    if step.window is None and (lifted_working or still_working):
        seen = [reading.limit.excerpt]
        if a.limit is not None:
            seen.append(a.limit.excerpt)
        fresh = [e for e in seen if e not in a.stale_banners]
        if fresh:
            a.stale_banners = [*a.stale_banners, *fresh][-STALE_BANNERS_KEPT:]


def _with_class(window: LimitWindow | None, reading: ScreenReading) -> LimitWindow | None:
    """A window the limit step left unclassified takes the banner's class."""
    if window is None or window.limit_class != "unknown" or reading.limit is None or not reading.limit_class:
        return window
    return window.model_copy(update={"limit_class": reading.limit_class})


def _auto_resume_deadline(spec: LoopPhaseSpec, a: AgentStatus, reading: ScreenReading) -> datetime | None:
    """While the screen promises the CLI's own resume, the first probe waits until the stated
    reset + ``timing.autoResumeGrace`` (the window ends at reset + slack). Bounded: after the
    first probe (or without the promise) None."""
    window = a.limit
    if reading.auto_resume is None or window is None or window.nudges > 0:
        return None
    extra = max(0.0, spec.timing.auto_resume_grace - spec.timing.limit_reset_slack)
    return window.until + timedelta(seconds=extra)


def _context_full(
    spec: LoopPhaseSpec, role: Role, a: AgentStatus, d: Decision, found: Match, pane: str
) -> None:
    """A full context: ``/compact`` once per conversation (if ``heal.compactOnContextFull``),
    then a cold restart; never a warm one, which resumes the same full conversation."""
    now = d.now
    a.context_full_since = a.context_full_since or now
    if spec.heal.compact_on_context_full and a.compact_sent_at is None:
        a.compact_sent_at = now
        if not already_typed(pane, COMPACT_TEXT):
            d.act(SendText(role=role, rule="context.compact",
                           reason=f"context full ({found.rule}: {found.excerpt}): compacting once",
                           text=COMPACT_TEXT, purpose="compact"), "compact")
        _set_state(a, "Idle", now, "context full: /compact sent")
        return
    if a.compact_sent_at is not None and now - a.compact_sent_at < timedelta(seconds=spec.heal.post_heal_quiet):
        _set_state(a, "Idle", now, "context full: waiting for /compact to finish")
        return
    why = "/compact did not help" if a.compact_sent_at else "spec.heal.compactOnContextFull is false"
    _heal(spec, role, a, d, "context-full", f"context full ({found.excerpt}); {why}", pane)


def _note_holds(d: Decision, previous: list[AccountHold]) -> None:
    """One Event per hold armed (naming the agent whose banner started it) and lifted."""
    st = d.status
    before = {h.account for h in previous}
    now_held = {h.account for h in st.holds}
    for hold in st.holds:
        if hold.account in before:
            continue
        starter = None if hold.loop_phase else hold.started_by
        roles = sorted(r for r, a in st.agents.items() if a.account == hold.account and r != starter)
        # About the account, not one role's action: the message names the starting agent.
        d.note("hold-armed", None, "account.hold",
               f"{holds.describe(hold)}; holding {', '.join(roles) or 'no other agent here'}: pings queued, stall clocks "
               "paused, no restarts")
    for account in sorted(before - now_held):
        d.note("hold-lifted", None, "account.hold-lifted",
               f"account {account}: no agent on it is limited any more; pings and stall clocks resume")


def hook_limit(
    reading: ScreenReading, obs: AgentObservation, active_since: datetime | None, now: datetime,
    tz: ZoneInfo,
) -> ScreenReading:
    """The screen reading plus what a StopFailure hook newer than the last visible work adds:
    its message (the banner text) read by the same classifier, so a hook-only limit keeps the
    banner's reset and class, and throttling is no window (core/hooks.py)."""
    return hook_reading(reading, obs, active_since, now, tz)


CLOCK_SKEW = timedelta(seconds=5)


def _started_after_request(obs: AgentObservation, a: AgentStatus) -> bool:
    """The observed process is the one we asked for, not the one it replaces (whose screen a
    stale observation may still show). Allows for a little clock skew between host and us."""
    if obs.started_at is None or a.start_requested_at is None:
        return False
    return obs.started_at >= a.start_requested_at - CLOCK_SKEW


def _request_stop(d: Decision, role: Role, a: AgentStatus, reason: str) -> None:
    _set_state(a, "Stopped", d.now, reason)
    a.start_requested_at = None
    if a.stop_requested_at is not None and d.now - a.stop_requested_at < STOP_RETRY:
        return
    a.stop_requested_at = d.now
    d.act(StopAgent(role=role, rule="phase.transition", reason=reason), "stop")


def _mark_started(a: AgentStatus, now: datetime, phase_index: int, mode: Literal["warm", "cold"]) -> None:
    a.start_requested_at = now
    a.phase_index = phase_index
    a.spawn_mode = mode
    a.idle_since = None
    a.waiting_until = a.waiting_declared = None
    if mode == "cold":
        a.session_id = None
        a.context_full_since = a.compact_sent_at = None  # a new conversation
    _set_state(a, "Starting", now, f"{mode} start requested")


def _heal(
    spec: LoopPhaseSpec, role: Role, a: AgentStatus, d: Decision, problem: Problem, reason: str,
    pane: str,
) -> None:
    st, now = d.status, d.now
    assert st.current is not None
    state = {"stalled": "Idle", "dead": "Dead", "fatal": "Fatal", "unreachable": "Dead",
             "context-full": "Idle"}[problem]
    _set_state(a, state, now, reason)
    step = step_heal(a.heal, problem, now, spec.heal, reason)
    a.heal = step.heal
    if step.circuit_opened:
        d.note(
            "circuit-open", role, "heal.circuit-breaker",
            f"{a.heal.consecutive_hard_failures} consecutive recreates failed; healing stopped "
            f"until the agent works again ({reason})",
            warning=True,
        )
    if step.tier is None:
        return
    rule = f"heal.{problem}"
    kind = TIER_KIND[step.tier]
    why = f"{reason}; tier {step.tier} ({kind})"
    target = st.current.index
    if step.tier == NUDGE:
        text = render_text(spec.texts.stall_nudge, role=role, phase=st.current.id, inbox="", kickoff="")
        if not already_typed(pane, text):
            d.act(SendText(role=role, rule=rule, reason=why, text=text, purpose="nudge"), kind)
        return
    poisoned = problem in POISONED or a.state == "Fatal" or a.context_full_since is not None
    if step.tier in (WARM, COLD):
        mode: Literal["warm", "cold"] = "cold" if step.tier == COLD or poisoned else "warm"
        d.act(RestartAgent(role=role, rule=rule, reason=why, phase_index=target, mode=mode), kind)
    else:
        assert step.tier == RECREATE
        mode = "cold" if poisoned else "warm"
        d.act(RecreateHost(role=role, rule=rule, reason=why, phase_index=target, mode=mode), kind)
    a.restarts += 1
    _mark_started(a, now, target, mode)
    _set_state(a, "Starting", now, why)


# -- scheduled text ---------------------------------------------------------------------------


def _deliver_pings(spec: LoopPhaseSpec, d: Decision) -> None:
    st = d.status
    assert st.current is not None
    keep: list[PendingPing] = []
    for ping in st.handoff.pending_pings:
        agent = st.agents.get(ping.role)
        if agent is None or agent.state not in DELIVERABLE or holds.held(st, agent.account):
            keep.append(ping)
            continue
        text = ping_text(spec, ping, st.current.id)
        d.act(SendText(role=ping.role, rule=f"handoff.{ping.kind}", reason=ping.reason, text=text, purpose="ping", attempt=ping.attempts), "ping")
        st.handoff.last_ping_at = d.now
    st.handoff.pending_pings = keep


def ping_text(spec: LoopPhaseSpec, ping: PendingPing, phase_id: str) -> str:
    texts = spec.texts
    if ping.kind == "claim":
        template = texts.claim_ping
    elif ping.kind == "review":
        template = texts.review_ping
    else:
        template = texts.adversary_inbox_ping if ping.role == "adversary" else texts.builder_inbox_ping
    inbox = ""
    if ping.role in LOOP_ROLES:
        inbox = f"{spec.repo.state_dir}/{inbox_name(spec, ping.role)}"  # type: ignore[arg-type]
    return render_text(template, role=ping.role, phase=phase_id, inbox=inbox, kickoff="")


def _wake_orchestrator(spec: LoopPhaseSpec, d: Decision) -> None:
    orch_spec = spec.agents.orchestrator
    agent = d.status.agents.get("orchestrator")
    if orch_spec is None or agent is None:
        return
    orch = d.status.orchestrator
    if orch.last_wake_at is None:
        orch.last_wake_at = d.now  # the first wake comes a full interval after start
        return
    due = orch.wake_due_since is not None or d.now - orch.last_wake_at >= timedelta(
        seconds=spec.timing.orchestrator_wake
    )
    if not due:
        return
    if agent.state not in {"Idle", "Waiting"} or holds.held(d.status, agent.account):
        orch.wake_due_since = orch.wake_due_since or d.now  # retried each tick until idle
        return
    text = " ".join(orch_spec.wake_prompt.split())
    d.act(SendText(role="orchestrator", rule="orchestrator.wake", reason="scheduled supervision pass", text=text, purpose="wake"), "wake")
    orch.last_wake_at = d.now
    orch.wake_due_since = None


# -- suspend / stop ---------------------------------------------------------------------------


def _suspend(spec: LoopPhaseSpec, obs: Observations, d: Decision) -> None:
    st = d.status
    if st.suspended_at is None:
        st.suspended_at = d.now
        d.note("suspend", None, "spec.suspend", "suspended: stopping agents, keeping all state")
    for role, o in obs.agents.items():
        a = st.agents.setdefault(role, AgentStatus())
        if o.present:
            a.stop_requested_at = None if a.state != "Stopped" else a.stop_requested_at
            _request_stop_for(d, role, a, "spec.suspend", "suspended")
        else:
            _set_state(a, "Stopped", d.now, "suspended")


def _hold_for_approval(spec: LoopPhaseSpec, obs: Observations, d: Decision) -> bool:
    """While the phase awaits approval nothing is pinged, healed or restarted; with
    ``approvalAgents: stop`` the agents are stopped (started warm again after a reject)."""
    cur = d.status.current
    if cur is None or cur.awaiting_approval_since is None:
        return False
    if spec.phases[cur.index].approval_agents == "stop":
        reason = f"phase {cur.id} awaits approval (approvalAgents: stop)"
        for role, o in obs.agents.items():
            a = d.status.agents.setdefault(role, AgentStatus())
            if o.present:
                _request_stop_for(d, role, a, "approval.hold", reason)
            else:
                _set_state(a, "Stopped", d.now, reason)
    return True


def _deliver_rejection(d: Decision) -> None:
    """Type a reject message to the builder once it can take text."""
    cur, builder = d.status.current, d.status.agents.get("builder")
    if cur is None or cur.rejection is None or builder is None or builder.state not in DELIVERABLE:
        return
    text = approval.rejection_text(cur.id, cur.rejection)
    d.act(SendText(role="builder", rule="approval.rejected", reason=approval.rejection_reason(cur.rejection),
                   text=text, purpose="nudge"), "ping")
    cur.rejection = None


def _stop_everything(spec: LoopPhaseSpec, obs: Observations, d: Decision, reason: str) -> None:
    for role, o in obs.agents.items():
        a = d.status.agents.setdefault(role, AgentStatus())
        if o.present:
            _request_stop_for(d, role, a, "phase.complete", reason)
        else:
            _set_state(a, "Stopped", d.now, "sequence complete")


def _request_stop_for(d: Decision, role: Role, a: AgentStatus, rule: str, reason: str) -> None:
    if a.stop_requested_at is not None and d.now - a.stop_requested_at < STOP_RETRY:
        return
    a.stop_requested_at = d.now
    a.start_requested_at = None
    _set_state(a, "Stopped", d.now, reason)
    d.act(StopAgent(role=role, rule=rule, reason=reason), "stop")


# -- results of executed actions --------------------------------------------------------------


def settle(
    spec: LoopPhaseSpec, status: LoopPhaseStatus, results: list[tuple[Action, bool, str]], now: datetime
) -> LoopPhaseStatus:
    """Fold the outcome of executed actions back into status (pure).

    Failed pings go back to the queue (bounded), a failed wake stays due, a failed probe is
    retried next tick; every failure is recorded with its detail.
    """
    d = Decision(copy_for_update(status), now)
    st = d.status
    for action, ok, detail in results:
        if ok:
            continue
        role = action.role
        if isinstance(action, SendText) and action.purpose == "ping" and role is not None:
            kind = action.rule.split(".", 1)[-1]
            attempts = action.attempt + 1
            if attempts < PING_MAX_ATTEMPTS:
                queue_ping(st.handoff, PendingPing(role=role, kind=kind, reason=action.reason, since=now, attempts=attempts))  # type: ignore[arg-type]
        elif isinstance(action, SendText) and action.rule == "approval.rejected" and st.current:
            st.current.rejection = approval.message_of(action.reason)  # typed again next tick
        elif isinstance(action, SendText) and action.purpose == "wake":
            st.orchestrator.wake_due_since = st.orchestrator.wake_due_since or now
        elif isinstance(action, StartAgent | RecreateHost) and role is not None:
            # The platform refused the host (e.g. a 403 from an admission plugin): kept on the
            # agent until its host appears, so Degraded/StartRefused shows it on every tick,
            # not only in this tick's Event. The start is retried after START_TIMEOUT.
            agent = st.agents.get(role)
            if agent is not None:
                agent.start_error = clip(detail, START_ERROR_MAX)
                agent.reason = f"start refused: {agent.start_error}"
        elif isinstance(action, SendText) and action.purpose == "probe" and role is not None:
            agent = st.agents.get(role)
            if agent is not None and agent.limit is not None:
                agent.limit = agent.limit.model_copy(update={"until": now})
        d.note("warning", role, f"{action.rule}.failed", f"{type(action).__name__} failed: {detail}", warning=True)
    conditions.finalize(spec, st, now)
    return st

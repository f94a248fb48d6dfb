"""One controller tick, shared by ``loopphase run`` and the Kubernetes operator.

observe (every role through the runtime, the pushed branch through the git source)
-> core.reconcile -> execute the actions -> core.settle the results into status.

Roles act concurrently; one role's actions run in order (a stop completes and is verified by
the runtime before anything else happens to that role). Nothing here decides anything: the
decisions are the core's, the I/O is the runtime's and the git source's.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from loopphase.api.spec import ROLES, LoopPhaseSpec, Role
from loopphase.api.status import AccountHold, LoopPhaseStatus
from loopphase.core import prompts
from loopphase.core.actions import (
    Action,
    EmitEvent,
    RecreateHost,
    RestartAgent,
    SendText,
    StartAgent,
    StopAgent,
    describe,
)
from loopphase.core.deadlines import next_wakeup
from loopphase.core.files import paths_to_read
from loopphase.core.gitfeed import settle_git_feed
from loopphase.core.observations import (
    AgentObservation,
    ApprovalRequest,
    Commit,
    GitObservation,
    Observations,
)
from loopphase.core.reconcile import reconcile, settle
from loopphase.core.userpattern import SUBJECT_MAX, capped
from loopphase.outbound import scrub, scrub_optional
from loopphase.runtime.base import AgentRuntime, HostResult, LaunchPlan

log = logging.getLogger("loopphase.tick")

ActionResult = tuple[Action, bool, str]


class GitSource(Protocol):
    async def observe(self, cursor: str | None, paths: Sequence[str]) -> GitObservation: ...


@dataclass
class TickResult:
    status: LoopPhaseStatus
    actions: list[Action] = field(default_factory=list)
    results: list[ActionResult] = field(default_factory=list)
    observations: Observations | None = None

    @property
    def changed_actions(self) -> list[Action]:
        """Actions with a side effect (everything but pure notes)."""
        return [a for a in self.actions if not isinstance(a, EmitEvent)]


def roles_to_observe(spec: LoopPhaseSpec, status: LoopPhaseStatus) -> list[Role]:
    wanted = spec.roles()
    return [*wanted, *(r for r in ROLES if r not in wanted and r in status.agents)]


def launch_plan(
    spec: LoopPhaseSpec, role: Role, phase_index: int, mode: str, role_prompt: Callable[[Role], str]
) -> LaunchPlan:
    return LaunchPlan(
        role=role,
        phase_index=phase_index,
        phase_id=spec.phases[phase_index].id,
        mode="warm" if mode == "warm" else "cold",
        kickoff=prompts.kickoff(spec, phase_index, role, role_prompt(role)),
        continuation=prompts.continuation(spec, phase_index, role),
        model=spec.model_for(role, phase_index),
    )


async def observe_all(
    spec: LoopPhaseSpec, status: LoopPhaseStatus, runtime: AgentRuntime, git: GitSource | None,
    approvals: Sequence[ApprovalRequest] = (),
) -> Observations:
    async def pushed() -> GitObservation | None:
        if git is None or status.completed_at is not None:
            return None
        index = status.current.index if status.current else 0
        index = min(index, len(spec.phases) - 1)
        return _scrubbed_git(
            await git.observe(status.handoff.last_seen_sha, paths_to_read(spec, index))
        )

    # The remote is read while the agents are (a push webhook's tick waits for neither twice).
    observed, git_obs = await asyncio.gather(
        observe_roles(runtime, roles_to_observe(spec, status)), pushed())
    return Observations(agents=observed.agents, git=git_obs, approvals=tuple(approvals))


def _scrubbed_agent(obs: AgentObservation) -> AgentObservation:
    """Error texts (git, HTTP, the platform) may quote credentials or carry terminal escapes;
    they end up in status, history and Events. Panes stay raw: the classifier reads them."""
    if obs.error is None:
        return obs
    return dataclasses.replace(obs, error=scrub(obs.error))


def _scrubbed_git(obs: GitObservation) -> GitObservation:
    """Commit subjects are whatever an agent wrote; they reach ping reasons and Events. Only
    their first ``SUBJECT_MAX`` characters are kept (all that patterns and status look at): a
    subject of megabytes costs neither the scrub nor the tick more than that."""
    commits = tuple(
        c if len(c.subject) <= SUBJECT_MAX and scrub(c.subject) == c.subject
        else Commit(sha=c.sha, subject=scrub(capped(c.subject)))
        for c in obs.commits
    )
    if commits == obs.commits and scrub_optional(obs.error) == obs.error:
        return obs
    return dataclasses.replace(obs, commits=commits, error=scrub_optional(obs.error))


async def execute(
    spec: LoopPhaseSpec,
    actions: Sequence[Action],
    runtime: AgentRuntime,
    role_prompt: Callable[[Role], str],
) -> list[ActionResult]:
    by_role: dict[Role | None, list[Action]] = {}
    for action in actions:
        by_role.setdefault(action.role, []).append(action)

    async def run_role(queue: list[Action]) -> list[ActionResult]:
        out: list[ActionResult] = []
        for action in queue:
            result = await _execute_one(spec, action, runtime, role_prompt)
            out.append((action, result.ok, scrub(result.detail)))
            log_result(*out[-1])
        return out

    grouped = await asyncio.gather(*(run_role(q) for q in by_role.values()))
    order = {id(a): i for i, a in enumerate(actions)}
    flat = [r for group in grouped for r in group]
    return sorted(flat, key=lambda r: order[id(r[0])])


async def _execute_one(
    spec: LoopPhaseSpec, action: Action, runtime: AgentRuntime, role_prompt: Callable[[Role], str]
) -> HostResult:
    role = action.role
    try:
        if isinstance(action, EmitEvent) or role is None:
            return HostResult(True)
        if isinstance(action, SendText):
            return await runtime.send(role, action.text)
        if isinstance(action, StopAgent):
            return await runtime.stop(role)
        if isinstance(action, StartAgent):
            return await runtime.start(launch_plan(spec, role, action.phase_index, action.mode, role_prompt))
        if isinstance(action, RestartAgent):
            return await runtime.restart(launch_plan(spec, role, action.phase_index, action.mode, role_prompt))
        if isinstance(action, RecreateHost):
            return await runtime.recreate(launch_plan(spec, role, action.phase_index, action.mode, role_prompt))
    except Exception as err:
        # Logged once, as the action's result line (log_result), with this text.
        log.debug("%s raised", describe(action), exc_info=True)
        return HostResult(False, f"{type(err).__name__}: {err}")
    return HostResult(False, f"unknown action {type(action).__name__}")


def log_result(action: Action, ok: bool, detail: str) -> None:
    """The one log line of an executed action: kind, role, rule, the core's reason (which
    quotes the text a rule matched), then ``-> ok (detail)`` or ``-> FAILED: why``. A
    note (EmitEvent) has no outcome: its line is the decision, a Warning one at WARNING."""
    if isinstance(action, EmitEvent):
        log.log(logging.WARNING if action.warning else logging.INFO, "%s", describe(action))
    elif ok:
        log.info("%s -> ok%s", describe(action), f" ({detail})" if detail else "")
    else:
        log.warning("%s -> FAILED: %s", describe(action), detail or "no detail")


WAKE_MARGIN = 0.05


def next_tick_delay(spec: LoopPhaseSpec, status: LoopPhaseStatus, now: datetime) -> float:
    """Seconds until the next tick: the signal interval, or sooner when a window ends."""
    delay = spec.timing.signal_interval
    wake = next_wakeup(status, now)
    if wake is not None:
        delay = min(delay, max(WAKE_MARGIN, (wake - now).total_seconds() + WAKE_MARGIN))
    return delay


async def run_tick(
    spec: LoopPhaseSpec,
    status: LoopPhaseStatus,
    runtime: AgentRuntime,
    git: GitSource | None,
    now: datetime,
    *,
    role_prompt: Callable[[Role], str],
    generation: int | None = None,
    default_tz: str = "UTC",
    namespace: str | None = None,
    account_holds: Sequence[AccountHold] = (),
    approvals: Sequence[ApprovalRequest] = (),
) -> TickResult:
    """``namespace``: the LoopPhase's on Kubernetes (None for a local run: the default account
    is the machine's login). ``account_holds``: the other LoopPhases' published holds.
    ``approvals``: approve/reject requests (``loopphase approve``, or annotations)."""
    observations = await observe_all(spec, status, runtime, git, approvals)
    if account_holds:
        observations = dataclasses.replace(observations, account_holds=tuple(account_holds))
    decide = _Decider(spec, runtime, now, role_prompt, generation, default_tz, namespace)
    actions, new_status, results = await decide(status, observations)
    settle_git_feed(status, new_status, observations.git, now)
    vacated = vacated_roles(spec, new_status, results)
    if vacated:
        # The old phase's hosts are verified gone: start the next phase's now, not a tick later
        # (issue 14, fault 4: one signal interval per advance). Only the vacated roles are
        # observed again (nothing else is decided twice), and git is not read again.
        log.info("phase advance: %s stopped and gone; starting the next phase in this tick",
                 ", ".join(vacated))
        again = await observe_roles(runtime, vacated)
        if account_holds:
            again = dataclasses.replace(again, account_holds=tuple(account_holds))
        more, new_status, more_results = await decide(new_status, again)
        actions, results = [*actions, *more], [*results, *more_results]
    return TickResult(status=new_status, actions=actions, results=results, observations=observations)


@dataclass
class _Decider:
    """reconcile -> execute -> settle (only when something failed), for one tick."""

    spec: LoopPhaseSpec
    runtime: AgentRuntime
    now: datetime
    role_prompt: Callable[[Role], str]
    generation: int | None
    default_tz: str
    namespace: str | None

    async def __call__(
        self, status: LoopPhaseStatus, observations: Observations
    ) -> tuple[list[Action], LoopPhaseStatus, list[ActionResult]]:
        actions, new_status = reconcile(
            self.spec, status, observations, self.now, generation=self.generation,
            default_tz=self.default_tz, namespace=self.namespace,
        )
        results = await execute(self.spec, actions, self.runtime, self.role_prompt)
        if any(not ok for _, ok, _ in results):
            new_status = settle(self.spec, new_status, results, self.now)
        return actions, new_status, results


def vacated_roles(
    spec: LoopPhaseSpec, status: LoopPhaseStatus, results: Sequence[ActionResult]
) -> list[Role]:
    """Roles whose host this tick stopped, verified gone, for a phase change, and that the
    current phase wants running: they can be started at once. Empty when anything in the tick
    failed (the next tick sorts that out, as before) or nothing is to run."""
    if status.completed_at is not None or spec.suspend or any(not ok for _, ok, _ in results):
        return []
    wanted = spec.roles()
    return [a.role for a, _, _ in results
            if isinstance(a, StopAgent) and a.rule == "phase.transition" and a.role in wanted]


async def observe_roles(runtime: AgentRuntime, roles: Sequence[Role]) -> Observations:
    """Observe just these roles (no git): what ``reconcile`` decides about, nothing else."""
    async def one(role: Role) -> AgentObservation:
        try:
            return await runtime.observe(role)
        except Exception as err:  # noqa: BLE001 - reported as an observation, never swallowed
            log.warning("observe %s failed: %s", role, err)
            return AgentObservation(role=role, present=True, error=f"observe failed: {err}")

    found = await asyncio.gather(*(one(r) for r in roles))
    return Observations(agents={r: _scrubbed_agent(o) for r, o in zip(roles, found, strict=True)})

"""What the shells observe and hand to the core: plain, immutable data."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from loopphase.api.spec import Role
from loopphase.api.status import AccountHold

# What made the shell ask the remote for the head behind an observation: a verified push
# webhook, or the regular poll (the tick's own cadence, or the slow safety-net poll).
GitSourceKind = Literal["webhook", "poll"]


@dataclass(frozen=True)
class HookEvent:
    """A structured event from the agent CLI's hooks (Claude Code: SessionStart, Stop, ...)."""

    name: str
    time: datetime | None = None
    session_id: str | None = None
    error_type: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class AgentObservation:
    """One role's facts at one tick.

    present: the host (shim process / pod) exists and answered.
    alive:   the agent CLI process inside it is running.
    phase_index: the phase the running agent was started for, as the host reports it
                 (pod label / shim metadata); None when unknown.
    host_pending: the host exists but the platform has not finished setting it up (a Pending
                 pod being scheduled, binding its volume or pulling its image): not a failure
                 until ``timing.hostStartTimeout`` after ``started_at`` (the host's creation).
    cannot_start: the whole reason this role's agent cannot start and will not start until a
                 human changes something (a configuration error the host refused the start with,
                 the agent's CLI not installed, a scenario or prompt file missing); None when a
                 start can succeed. Reported only when no agent runs (a running agent's
                 problem matters at its next start). The core does not heal it: NeedsAttention.
    """

    role: Role
    present: bool
    alive: bool = False
    pid: int | None = None
    started_at: datetime | None = None
    pane: str = ""
    last_change_at: datetime | None = None
    session_id: str | None = None
    hook_events: tuple[HookEvent, ...] = ()
    phase_index: int | None = None
    restarts: int = 0
    error: str | None = None
    pod_name: str | None = None
    terminating: bool = False
    host_pending: bool = False  # the platform is still preparing the host (``error`` says how)
    cannot_start: str | None = None


@dataclass(frozen=True)
class Commit:
    sha: str
    subject: str


@dataclass(frozen=True)
class GitObservation:
    """The pushed branch as seen this tick.

    commits: new commits since the cursor, oldest first (empty when head did not move).
    files: path -> content at ``head`` (None = file absent). Paths are the ones the shell was
           asked to read (status file candidates, inbox files), exactly as asked.
    source: what caused the remote read ``head`` came from (None: not known, e.g. a test).
    webhook_at: when the last verified push webhook for this remote arrived (None: never).
    webhooks_expected: a webhook receiver is configured for this LoopPhase, so pushes should
                 arrive as webhooks and the poll is only the safety net.
    """

    reachable: bool
    head: str | None = None
    commits: tuple[Commit, ...] = ()
    force_pushed: bool = False
    files: dict[str, str | None] = field(default_factory=dict)
    error: str | None = None
    source: GitSourceKind | None = None
    webhook_at: datetime | None = None
    webhooks_expected: bool = False
    # path -> size in bytes of files at ``head`` too large to read (``files`` says None for them)
    oversized: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ApprovalRequest:
    """A human's verdict on a phase awaiting approval (``loopphase approve``/``reject``, or an
    annotation). ``id`` is unique per request; ``phase`` None means the current phase."""

    id: str
    verdict: Literal["approve", "reject"]
    phase: str | None = None
    message: str = ""


@dataclass(frozen=True)
class Observations:
    """account_holds: the holds other LoopPhases' agents started (each with ``loop_phase`` set
    to its ``namespace/name``), from the shell's shared registry; this LoopPhase's own holds
    are derived from its status, never passed in."""

    agents: dict[Role, AgentObservation]
    git: GitObservation | None = None
    account_holds: tuple[AccountHold, ...] = ()
    approvals: tuple[ApprovalRequest, ...] = ()

"""The ``LoopPhase`` status: everything the controller knows, persisted.

All decision counters, windows and cursors live here (REFERENCE.md lesson 12), so a
controller restart continues exactly where the last one stopped.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from loopphase.api.base import ApiModel, Timestamp
from loopphase.api.notify import NotifyStatus
from loopphase.api.spec import Role

AgentState = Literal[
    "Starting", "Active", "Idle", "Waiting", "Limited", "Fatal", "Dead", "Stopped", "NeedsAttention"
]
# Why an agent needs a human (a closed set: a restart cannot fix any of these, so no heal ladder).
AttentionReason = Literal["LoginRequired", "Dialog", "SpendLimit", "CircuitOpen", "CannotStart"]
# What kind of limit a window is for: session (5-hour/session), weekly, monthly, model (a
# model-specific cap), spend (spend cap, credit balance, extra usage: no reset to wait for),
# transient (overloaded/throttled: the CLI retries; not a usage window).
LimitClass = Literal["session", "weekly", "monthly", "model", "spend", "transient", "unknown"]
SpawnMode = Literal["warm", "cold"]
DisplayPhase = Literal[
    "Pending", "Running", "Limited", "NeedsAttention", "Degraded", "Advancing", "Suspended",
    "Complete", "Invalid", "AwaitingApproval",
]
ActionKind = Literal[
    "start",
    "stop",
    "ping",
    "probe",
    "nudge",
    "wake",
    "restart-warm",
    "restart-cold",
    "recreate",
    "advance",
    "complete",
    "circuit-open",
    "limit-armed",
    "limit-lifted",
    "force-push",
    "suspend",
    "resume",
    "warning",
    "needs-attention",
    "attention-cleared",
    "compact",
    "hold-armed",
    "hold-lifted",
    "awaiting-approval",
    "approved",
    "rejected",
    "phases-edited",
]
ConditionType = Literal[
    "Ready", "Progressing", "Limited", "Stalled", "Degraded", "Complete", "NeedsAttention",
    "AccountHold", "WebhooksStale", "AwaitingApproval",
]
ObservationSource = Literal["webhook", "poll"]
HISTORY_LIMIT = 50


class LimitWindow(ApiModel):
    """An armed usage-limit window. While it exists the agent is never killed or restarted."""

    until: Timestamp
    parsed: bool = Field(description="until came from the banner (else the flat probe fallback)")
    armed_at: Timestamp
    nudges: int = 0
    last_probe_at: Timestamp | None = None
    rule: str = ""
    excerpt: str = ""
    limit_class: LimitClass = Field("unknown", description="the kind of limit the banner names")
    decided_by: str = Field(
        "", description="the rule that set `until` (stated reset, horizon, fallback cadence, ...)"
    )


class Attention(ApiModel):
    """Why an agent waits for a human. Re-checked every tick; cleared when the screen shows work."""

    reason: AttentionReason
    message: str = Field("", description="the whole cause, never cut")
    rule: str = ""
    excerpt: str = ""
    since: Timestamp


class HealState(ApiModel):
    tier: int = Field(0, description="0 none, 1 nudge, 2 warm restart, 3 cold, 4 recreate")
    last_action_at: Timestamp | None = None
    consecutive_hard_failures: int = 0
    circuit_open: bool = False
    problem: str = Field("", description="the problem the last heal addressed")
    reason: str = ""


class AgentStatus(ApiModel):
    pod: str | None = None
    state: AgentState = "Stopped"
    since: Timestamp | None = None
    idle_since: Timestamp | None = None
    waiting_until: Timestamp | None = None
    limit: LimitWindow | None = None
    heal: HealState = Field(default_factory=HealState)
    restarts: int = 0
    spawn_mode: SpawnMode | None = None
    session_id: str | None = None
    phase_index: int | None = Field(None, description="the phase this agent was started for")
    phase_id: str | None = Field(
        None, description="the id of the phase this agent was started for: an edit of "
        "spec.phases that moves the phase keeps the agent (its host still reports the old index)")
    started_at: Timestamp | None = None
    start_requested_at: Timestamp | None = None
    stop_requested_at: Timestamp | None = None
    waiting_declared: Timestamp | None = Field(None, description="the raw WAITING-UNTIL value")
    active_since: Timestamp | None = Field(
        None, description="when the agent last became active (set on the transition only)"
    )
    reason: str = ""
    start_error: str = Field(
        "", description="why the platform refused or failed this agent's last start (the API "
        "server's message); shown as Degraded/StartRefused; cleared when its host appears")
    attention: Attention | None = None
    stale_banners: list[str] = Field(
        default_factory=list,
        description="limit banners still on screen after a window lifted because the agent "
        "worked: not armed again until no banner is in view",
    )
    account: str | None = Field(None, description="the subscription this agent's limits count on")
    context_full_since: Timestamp | None = Field(
        None, description="the context-full screen was seen (cleared by a cold start or work)"
    )
    compact_sent_at: Timestamp | None = Field(
        None, description="`/compact` was typed for a full context (once per episode)"
    )


class AccountHold(ApiModel):
    """Every agent of ``account`` is held: a hard limit on one of them counts for all.

    While held: pings stay queued, stall clocks are paused, nothing is restarted; each agent
    that shows its own banner keeps its own window (probed or auto-resumed on its own screen).
    """

    account: str
    since: Timestamp
    until: Timestamp = Field(description="the earliest reliable reset among the account's windows")
    started_by: str = Field(description="the role whose banner started it (`ns/name:role` if another LoopPhase's)")
    rule: str = ""
    excerpt: str = ""
    limit_class: LimitClass = "unknown"
    loop_phase: str | None = Field(
        None, description="the LoopPhase whose agent started it (`namespace/name`); unset: this one"
    )


class PendingPing(ApiModel):
    role: Role
    kind: Literal["claim", "review", "inbox"]
    reason: str
    since: Timestamp
    attempts: int = 0


class HandoffStatus(ApiModel):
    last_seen_sha: str | None = None
    inbox_hashes: dict[str, str] = Field(default_factory=dict)
    pending_pings: list[PendingPing] = Field(default_factory=list)
    last_ping_at: Timestamp | None = None
    claims_seen: int = 0
    reviews_seen: int = 0
    review_pending: bool = Field(False, description="a claim awaits a review in this phase")
    last_review_passed: bool = False
    remote_error: str | None = None
    oversized_files: dict[str, int] = Field(
        default_factory=dict, description="path -> bytes of pushed files over repo.maxFileBytes"
    )


class GitFeedStatus(ApiModel):
    """How pushes reach the controller: webhook or poll. Written only when something changes
    (a new head, a new webhook), never per tick, so an idle loop writes no status."""

    last_observation_source: ObservationSource | None = Field(
        None, description="how the last new head was found: a push webhook or the poll"
    )
    last_observation_at: Timestamp | None = Field(None, description="when that head was first seen")
    last_observed_head: str | None = None
    last_webhook_at: Timestamp | None = Field(
        None, description="when the last verified push webhook for this remote arrived"
    )
    heads_by_webhook: int = Field(0, description="new heads found because a webhook arrived")
    heads_by_poll: int = Field(
        0, description="new heads found by the poll (with webhooks configured: missed webhooks)"
    )


class OrchestratorStatus(ApiModel):
    last_wake_at: Timestamp | None = None
    wake_due_since: Timestamp | None = None


class CurrentPhase(ApiModel):
    index: int = 0
    id: str = ""
    started_at: Timestamp | None = None
    done_commit: str | None = None
    done_blocked_sha: str | None = Field(
        None, description="DONE seen at this sha but its preconditions were not met"
    )
    awaiting_approval_since: Timestamp | None = Field(
        None, description="DONE verified; the phase waits for approval (phases[].approval: manual)"
    )
    approved: bool = Field(False, description="approved: the verified DONE advances")
    rejected_sha: str | None = Field(None, description="the DONE at this sha was rejected")
    rejection: str | None = Field(None, description="a reject message not yet typed to the builder")
    approvals_handled: list[str] = Field(
        default_factory=list, description="ids of approve/reject requests already acted on"
    )


class HistoryEntry(ApiModel):
    seq: int
    time: Timestamp
    kind: ActionKind
    role: Role | None = None
    rule: str = ""
    reason: str = ""


class Condition(ApiModel):
    type: ConditionType
    status: Literal["True", "False", "Unknown"]
    reason: str
    message: str = ""
    last_transition_time: Timestamp
    observed_generation: int | None = None


class LoopPhaseStatus(ApiModel):
    observed_generation: int | None = None
    phase: DisplayPhase = "Pending"
    progress: str = ""
    current: CurrentPhase | None = None
    applied_start_at: str | None = Field(None, description="the spec.startAt already honoured")
    agents: dict[Role, AgentStatus] = Field(default_factory=dict)
    handoff: HandoffStatus = Field(default_factory=HandoffStatus)
    git: GitFeedStatus = Field(default_factory=GitFeedStatus)
    orchestrator: OrchestratorStatus = Field(default_factory=OrchestratorStatus)
    history: list[HistoryEntry] = Field(default_factory=list)
    history_seq: int = 0
    conditions: list[Condition] = Field(default_factory=list)
    holds: list[AccountHold] = Field(
        default_factory=list, description="account-wide holds affecting this LoopPhase's agents"
    )
    last_heavy_check_at: Timestamp | None = Field(
        None, description="the last DONE check when timing.doneOnPush is false"
    )
    completed_at: Timestamp | None = None
    done_phases: list[str] | None = Field(
        None, description="ids of the phases whose DONE was verified, in the order verified; "
        "progress and Complete count these (by id), so a phase added to spec.phases later is "
        "not counted done and re-opens a completed loop")
    skipped_phases: list[str] = Field(
        default_factory=list, description="ids of the phases before an explicit spec.startAt "
        "(skipped on purpose: counted as finished)")
    suspended_at: Timestamp | None = None
    message: str = ""
    # Display-only mirrors for printer columns (derived from agents on every reconcile).
    builder: str | None = None
    adversary: str | None = None
    ready: str | None = None
    needs_attention: str | None = Field(
        None, description="roles that need a human, with the reason (printer column)"
    )
    notifications: NotifyStatus = Field(default_factory=NotifyStatus)

    def condition(self, type_: ConditionType) -> Condition | None:
        return next((c for c in self.conditions if c.type == type_), None)

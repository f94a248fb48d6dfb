"""The per-call collector of one reconcile: actions out, history in status.

Created fresh for every ``reconcile`` call (no module-level state). Every action and every
notable decision goes through ``act``/``note`` so it is both returned to the shell (to execute
and to post as a Kubernetes Event) and recorded in ``status.history`` with its rule and reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from loopphase.api.base import clip
from loopphase.api.spec import Role
from loopphase.api.status import HISTORY_LIMIT, ActionKind, HistoryEntry, LoopPhaseStatus
from loopphase.core.actions import Action, EmitEvent


def copy_for_update(status: LoopPhaseStatus) -> LoopPhaseStatus:
    """A copy reconcile may mutate, without deep-copying what it never mutates.

    History entries are immutable once recorded (only appended or trimmed), and an agent's
    nested limit window and heal state are replaced, never edited in place, so the copies share
    them; everything reconcile edits in place is copied. A full deep copy of a status with a
    full history was most of reconcile's cost at scale. A test pins that reconcile never
    mutates the status it was given.
    """
    new = status.model_copy()
    new.agents = {role: agent.model_copy() for role, agent in status.agents.items()}
    new.handoff = status.handoff.model_copy(deep=True)
    new.orchestrator = status.orchestrator.model_copy()
    new.current = status.current.model_copy() if status.current is not None else None
    new.conditions = [condition.model_copy() for condition in status.conditions]
    new.history = list(status.history)
    return new


@dataclass
class Decision:
    status: LoopPhaseStatus
    now: datetime
    actions: list[Action] = field(default_factory=list)
    # Roles put in (or kept in) NeedsAttention this call; the others' attention is cleared.
    attended: set[Role] = field(default_factory=set)

    def act(self, action: Action, kind: ActionKind) -> None:
        self.actions.append(action)
        self._record(kind, action.role, action.rule, action.reason)

    def note(
        self, kind: ActionKind, role: Role | None, rule: str, reason: str, *, warning: bool = False
    ) -> None:
        """A decision without a side effect of its own: still an Event and a history line."""
        self.actions.append(
            EmitEvent(role=role, rule=rule, reason=reason, kind=kind, warning=warning)
        )
        self._record(kind, role, rule, reason)

    def _record(self, kind: ActionKind, role: Role | None, rule: str, reason: str) -> None:
        status = self.status
        status.history_seq += 1
        status.history.append(
            HistoryEntry(
                seq=status.history_seq, time=self.now, kind=kind, role=role, rule=rule,
                reason=clip(reason, 300),
            )
        )
        if len(status.history) > HISTORY_LIMIT:
            del status.history[: len(status.history) - HISTORY_LIMIT]

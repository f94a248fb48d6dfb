"""Builders shared by the reconcile tests: specs, panes, observations, a stepping world."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from loopphase.api.spec import LoopPhaseSpec, Role
from loopphase.api.status import LoopPhaseStatus
from loopphase.core.actions import Action
from loopphase.core.observations import AgentObservation, Commit, GitObservation, Observations
from loopphase.core.reconcile import reconcile

T0 = datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC)

PANE_ACTIVE = "Reading files\n\n⠋ Working… (12s · esc to interrupt)\n> "
PANE_IDLE = "I pushed the claim and will wait for review.\n\n> "
PANE_FATAL = (
    "API Error: 400 messages.3.content.0: thinking blocks in the latest assistant message "
    "cannot be modified.\n> "
)


def banner(reset: str = "12:30pm") -> str:
    return f"Working on gate 2\n\n5-hour limit reached ∙ resets {reset}\n> "


def waiting(until: datetime) -> str:
    return f"Nothing to verify yet.\nWAITING-UNTIL: {until.strftime('%Y-%m-%dT%H:%M:%SZ')}\n> "


def make_spec(**overrides: Any) -> LoopPhaseSpec:
    raw: dict[str, Any] = {
        "repo": {"url": "https://example.invalid/repo.git"},
        "phases": [
            {"id": "p1", "plan": "plans/p1.md", "statusFile": "STATUS-p1.md"},
            {"id": "p2", "plan": "plans/p2.md", "statusFile": "STATUS-p2.md"},
            {"id": "p3", "plan": "plans/p3.md", "statusFile": "STATUS-p3.md"},
        ],
    }
    raw.update(overrides)
    return LoopPhaseSpec.model_validate(raw)


def agent(role: Role, pane: str | None, *, phase: int = 0, present: bool = True,
          alive: bool = True, changed: datetime | None = None, error: str | None = None) -> AgentObservation:
    if pane is None:
        return AgentObservation(role=role, present=present, alive=False, phase_index=phase, error=error)
    return AgentObservation(
        role=role, present=present, alive=alive, pane=pane, phase_index=phase,
        last_change_at=changed, started_at=T0, error=error,
    )


def absent(role: Role) -> AgentObservation:
    return AgentObservation(role=role, present=False)


def git(head: str, *subjects: str, files: dict[str, str | None] | None = None,
        force: bool = False) -> GitObservation:
    commits = tuple(Commit(f"{head}{i:02d}", s) for i, s in enumerate(subjects))
    return GitObservation(reachable=True, head=head, commits=commits, files=files or {}, force_pushed=force)


@dataclass
class World:
    """A status carried across reconcile calls, as a shell would carry it."""

    spec: LoopPhaseSpec = field(default_factory=make_spec)
    status: LoopPhaseStatus = field(default_factory=LoopPhaseStatus)
    now: datetime = T0
    log: list[list[Action]] = field(default_factory=list)

    def tick(self, agents: dict[Role, AgentObservation], gitobs: GitObservation | None = None,
             *, advance: float = 0.0) -> list[Action]:
        self.now += timedelta(seconds=advance)
        actions, self.status = reconcile(self.spec, self.status, Observations(agents, gitobs), self.now)
        self.log.append(actions)
        return actions

    def started(self) -> None:
        """Bring both loop roles to a started, idle state at phase 0 (past the start grace)."""
        self.tick({"builder": absent("builder"), "adversary": absent("adversary")})
        self.tick(both(PANE_ACTIVE), git("base0"), advance=1)


def both(pane: str | None, **kw: Any) -> dict[Role, AgentObservation]:
    return {"builder": agent("builder", pane, **kw), "adversary": agent("adversary", pane, **kw)}


def kinds(actions: list[Action]) -> list[tuple[str, str | None]]:
    return [(type(a).__name__, a.role) for a in actions]


def of_type(actions: list[Action], name: str, role: Role | None = None) -> list[Action]:
    return [a for a in actions if type(a).__name__ == name and (role is None or a.role == role)]


# -- the screens of issue 11's minimal inputs ---------------------------------------------------

PANE_LOGIN = "Working on gate 2\n\nInvalid API key · Please run /login\n> "
DIALOG_TITLE = "WARNING: Claude Code running in Bypass Permissions mode"
PANE_DIALOG = (
    f"{DIALOG_TITLE}\n\nIn Bypass Permissions mode, Claude Code will not ask for your approval "
    "before running potentially dangerous commands.\n\n❯ 1. No, exit\n  2. Yes, I accept\n\n"
    "Enter to confirm · Esc to cancel\n"
)
PANE_SPEND = "Working on gate 2\n\nYou've hit your monthly spend limit.\n> "
PANE_CONTEXT_FULL = "Working on gate 2\n\nPrompt is too long\n> "


def auto_resume(reset: str = "10:40am", resume: str = "10:41am") -> str:
    return (f"Working on gate 2\n\n5-hour limit reached ∙ resets {reset}\n"
            f"continuing automatically at {resume} · esc to cancel\n> ")

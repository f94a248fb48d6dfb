"""States a restart cannot fix (NeedsAttention), pure.

An expired login, a blocking dialog, a spend limit with no reset and an open heal circuit all
wait for a human: no heal ladder, nothing typed (pings stay queued), one Warning Event when the
state begins, re-checked every tick, and normal supervision resumes by itself once the cause is
gone. ``CannotStart`` is set by the runtime's start path; this module never clears it.

Shapes: ``Finding`` is what this tick's observation says (reason, rule, excerpt, message); the
agent's ``Attention`` in status is the persisted form, with ``since``.
"""

from __future__ import annotations

from dataclasses import dataclass

from loopphase.api.status import AgentStatus, AttentionReason
from loopphase.core.screen import ScreenReading

# The reasons this module sets and clears; others (CannotStart) belong to their producer.
OWNED: frozenset[str] = frozenset({"LoginRequired", "Dialog", "SpendLimit", "CircuitOpen"})
@dataclass(frozen=True)
class Finding:
    reason: AttentionReason
    rule: str
    excerpt: str
    message: str


def screen_finding(role: str, reading: ScreenReading) -> Finding | None:
    """A dialog (always: typing into one picks an answer) or a failed login (unless the screen
    shows work) in this tick's reading; None when neither. A StopFailure hook's failed login is
    already in ``reading.login`` (rule ``hook.authentication-failed``, core/hooks.py): the one
    path that reads hooks."""
    if reading.dialog is not None:
        title = reading.dialog.excerpt
        return Finding(
            "Dialog", reading.dialog.rule, title,
            f"{role}: a dialog blocks the agent ({title}); nothing is typed into it: answer it "
            "in the agent's terminal, or seed the setting that skips it. Supervision resumes "
            "by itself once it is gone",
        )
    if reading.active is not None:
        return None
    login = reading.login
    if login is not None:
        return Finding(
            "LoginRequired", login.rule, login.excerpt,
            f"{role}: the agent's login is invalid or expired ({login.excerpt}); a restart "
            "cannot fix it: log in again (/login in the agent's terminal, or renew the "
            "credentials Secret). Supervision resumes by itself once the agent works",
        )
    return None


def spend_finding(role: str, agent: AgentStatus) -> Finding | None:
    """The agent's window is for a spend/credit limit: no reset to wait for."""
    window = agent.limit
    if window is None or window.limit_class != "spend":
        return None
    return Finding(
        "SpendLimit", window.rule, window.excerpt,
        f"{role}: spend or credit limit ({window.excerpt}); there is no reset to wait for: "
        "raise the spend limit or add credit. The agent is held (never restarted) and probed "
        "until the limit lifts",
    )


def circuit_finding(role: str, agent: AgentStatus) -> Finding:
    heal = agent.heal
    return Finding(
        "CircuitOpen", "heal.circuit-breaker", heal.problem,
        f"{role}: healing stopped: {heal.reason or 'the hardest tier failed repeatedly'}; it "
        "resumes by itself once the agent is seen working (fix the cause, or restart it by "
        "hand)",
    )

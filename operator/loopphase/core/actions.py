"""What the core wants done: plain, immutable data the shells execute.

Every action carries the rule that produced it and a human reason, so it can be logged,
recorded as a Kubernetes Event and explained in status.history.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from loopphase.api.spec import Role

SendPurpose = Literal["ping", "probe", "nudge", "wake", "bootstrap", "compact"]
SpawnMode = Literal["warm", "cold"]


@dataclass(frozen=True)
class Action:
    role: Role | None
    rule: str
    reason: str


@dataclass(frozen=True)
class SendText(Action):
    text: str = ""
    purpose: SendPurpose = "ping"
    attempt: int = 0


@dataclass(frozen=True)
class StartAgent(Action):
    """Ensure the role's host exists and runs the agent for ``phase_index``.

    warm: resume the previous conversation with the continuation prompt;
    cold: a fresh conversation with the phase kickoff.
    """

    phase_index: int = 0
    mode: SpawnMode = "cold"


@dataclass(frozen=True)
class RestartAgent(Action):
    """Restart the agent process inside its host (kill, verify gone, start)."""

    phase_index: int = 0
    mode: SpawnMode = "warm"


@dataclass(frozen=True)
class RecreateHost(Action):
    """Tear down and recreate the role's host (pod or local shim), then start the agent.

    Warm unless the conversation is poisoned (a FATAL session is never resumed).
    """

    phase_index: int = 0
    mode: SpawnMode = "warm"


@dataclass(frozen=True)
class StopAgent(Action):
    """Stop the role's agent and its host; the workspace (PVC / clone) stays."""


@dataclass(frozen=True)
class EmitEvent(Action):
    """A notable decision with no side effect of its own (armed, lifted, advance, ...)."""

    kind: str = ""
    warning: bool = False


def describe(action: Action) -> str:
    """One line for logs: ``send-text role=adversary rule=handoff.claim: ...``."""
    name = type(action).__name__
    extra = ""
    if isinstance(action, SendText):
        extra = f" purpose={action.purpose}"
    elif isinstance(action, StartAgent | RestartAgent | RecreateHost):
        extra = f" mode={action.mode} phase={action.phase_index}"
    return f"{name} role={action.role} rule={action.rule}{extra}: {action.reason}"

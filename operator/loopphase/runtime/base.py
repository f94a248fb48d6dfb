"""Where agents live: the interface both runtimes (local processes, Kubernetes pods) implement.

The controller tick (``loopphase.controller``) observes every role through ``observe``, asks
the pure core what to do, and carries the resulting actions out through the other methods.
Every method has a bounded duration (each implementation applies timeouts to its I/O) and
reports failures as ``HostResult(ok=False, detail=...)`` or an observation with ``error`` set,
never by hanging.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from loopphase.api.spec import Role
from loopphase.core.observations import AgentObservation

SpawnMode = Literal["warm", "cold"]


@dataclass(frozen=True)
class LaunchPlan:
    """Everything needed to (re)start one role's agent for one phase.

    kickoff: the full kickoff prompt (phase preamble + the role's standing prompt), used cold.
    continuation: the non-empty continuation prompt, used warm (claude --continue ... "<it>").
    """

    role: Role
    phase_index: int
    phase_id: str
    mode: SpawnMode
    kickoff: str
    continuation: str
    model: str | None


@dataclass(frozen=True)
class HostResult:
    ok: bool
    detail: str = ""


class AgentRuntime(Protocol):
    async def observe(self, role: Role) -> AgentObservation:
        """The role's facts now: host present, agent alive, pane text, phase, ..."""
        ...

    async def start(self, plan: LaunchPlan) -> HostResult:
        """Create the role's host if missing and start the agent per ``plan``.

        Must not create a second host for a role that already has one.
        """
        ...

    async def restart(self, plan: LaunchPlan) -> HostResult:
        """Restart the agent inside its existing host: kill, verify gone, start."""
        ...

    async def recreate(self, plan: LaunchPlan) -> HostResult:
        """Tear the host down (verify gone), then create it again and start warm."""
        ...

    async def stop(self, role: Role) -> HostResult:
        """Stop the agent and remove its host; workspace stays. Idempotent."""
        ...

    async def send(self, role: Role, text: str) -> HostResult:
        """Type one line into the agent and submit it; ok only when delivery was verified."""
        ...

"""What the demo prints while it runs: one line per action, a header line per phase, and a
"waiting:" line that explains a silence (what the loop is waiting for) when nothing has happened
for ``gap`` seconds.

``explain`` reads only the status (no I/O), so the same words are testable without a run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from loopphase.api.base import clip
from loopphase.api.status import LoopPhaseStatus
from loopphase.runner.loop import TickReport

# What each demo phase shows (printed when it starts), by who plays the agents: each header
# promises only what that demo's script plays (demo/scenarios.py, demo/agents.py).
PHASE_PURPOSES: dict[str, dict[str, str]] = {
    "sim": {
        "p1-handoff": "an expired login needs a human; claim -> adversary pinged -> review -> "
                      "builder pinged -> DONE pushed -> the approval gate",
        "p2-limits": "a usage-limit window: armed from the banner, kept quiet, probed, lifted; "
                     "the account hold; a declared wait",
        "p3-healing": "a fatal API error restarted cold; a silent builder nudged, then restarted warm",
    },
    "claude": {
        "p1-handoff": "claim -> adversary pinged -> review -> builder pinged -> DONE pushed -> "
                      "the approval gate",
        "p2-limits": "Claude Code's usage-limit screen: a window armed from it, kept quiet (no "
                     "kills; the account hold), lifted when Claude Code resumes by itself",
        "p3-healing": "a fatal API error restarted cold; a silent builder nudged back to work",
    },
    "opencode": {
        "p1-handoff": "claim -> adversary pinged -> review -> builder pinged -> DONE pushed -> "
                      "the approval gate",
        "p2-limits": "an inbox note pinged to the adversary; claim -> review -> DONE",
        "p3-healing": "claim -> review -> DONE (opencode's error screens are not read yet)",
    },
}
PHASE_PURPOSE = PHASE_PURPOSES["sim"]


def _clock(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%H:%M:%S UTC")


def explain(status: LoopPhaseStatus, now: datetime) -> str:
    """Why nothing is happening right now, in words: limit windows, declared waits, working
    agents, a pending review, DONE not yet on the pushed branch."""
    parts = []
    for role, agent in status.agents.items():
        if agent.limit is not None and agent.limit.until > now:
            secs = int((agent.limit.until - now).total_seconds())
            parts.append(f"{role} in a usage-limit window until {_clock(agent.limit.until)} ({secs}s; no kills, "
                         "one probe when it ends)")
        elif agent.waiting_until is not None and agent.waiting_until > now:
            parts.append(f"{role} declared a wait until {_clock(agent.waiting_until)} (honoured)")
        elif agent.attention is not None:
            parts.append(f"{role} needs attention ({agent.attention.reason}): {agent.attention.message}")
        elif agent.state == "Active":
            parts.append(f"{role} working")
        elif agent.state == "Idle" and agent.idle_since is not None:
            secs = int((now - agent.idle_since).total_seconds())
            ladder = (f"healing tier {agent.heal.tier}: a restart follows if it stays silent"
                      if agent.heal.tier else "a nudge comes once it passes spec.timing.stallIdle")
            parts.append(f"{role} idle for {secs}s ({ladder})")
        elif agent.state == "Starting":
            parts.append(f"{role} starting")
        elif agent.state in {"Fatal", "Dead"}:
            parts.append(f"{role} {agent.state.lower()}: healing ({agent.reason})")
    if status.handoff.review_pending:
        parts.append("a claim awaits the adversary's review")
    if status.current is not None and status.completed_at is None:
        parts.append(f"DONE for {status.current.id} not yet on the pushed branch")
    return "; ".join(parts) or "nothing pending"


class Printer:
    """Prints as the loop runs (called once per tick): actions, phase headers, silences."""

    def __init__(self, phases: int, gap: float = 8.0, clock: Callable[[], float] = time.monotonic,
                 out: Callable[[str], None] | None = None,
                 wallclock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 purposes: dict[str, str] | None = None) -> None:
        """``purposes``: phase id -> what the phase shows (default: the simulated demo's)."""
        self.purposes = PHASE_PURPOSE if purposes is None else purposes
        self.started = clock()
        self.clock = clock
        self.phases = phases
        self.gap = gap
        self.last_output = self.started
        self.phase_seen: str | None = None
        self.states_seen: set[tuple[str, str]] = set()
        self.out = out or (lambda line: print(line, flush=True))
        self.wallclock = wallclock

    def _print(self, line: str) -> None:
        self.out(line)
        self.last_output = self.clock()

    def __call__(self, report: TickReport) -> None:
        status = report.result.status
        elapsed = self.clock() - self.started
        for role, agent in status.agents.items():
            self.states_seen.add((role, agent.state))
        current = status.current
        if current is not None and current.id != self.phase_seen and status.completed_at is None:
            self.phase_seen = current.id
            purpose = self.purposes.get(current.id, "")
            self._print(f"── phase {current.index + 1}/{self.phases} {current.id}"
                        f"{': ' + purpose if purpose else ''}")
        outcome = {id(a): ok for a, ok, _ in report.result.results}
        for action in report.result.actions:
            name = type(action).__name__
            label = getattr(action, "kind", "") or getattr(action, "purpose", "") or name
            if name in {"StartAgent", "RestartAgent", "RecreateHost"}:
                label = f"{name} {getattr(action, 'mode', '')}".strip()
            ok = "" if outcome.get(id(action), True) else "  [FAILED]"
            role = action.role or "loop"
            self._print(f"  {elapsed:6.1f}s  {role:<9} {label:<18} {clip(action.reason, 90)}{ok}")
        if self.clock() - self.last_output >= self.gap and status.completed_at is None:
            self._print(f"  {elapsed:6.1f}s  waiting: {explain(status, self.wallclock())}")

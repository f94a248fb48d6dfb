"""The demo's closing summary, computed from the recorded action log (not assumed)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from loopphase.api.status import LoopPhaseStatus

KILLS = {"RestartAgent", "RecreateHost", "StopAgent"}


@dataclass
class Summary:
    complete: bool
    phases: list[tuple[str, float]]
    counts: Counter[str]
    kills_in_windows: int
    heals_in_attention: int = 0
    states_seen: set[tuple[str, str]] = field(default_factory=set)
    missing: list[str] = field(default_factory=list)
    unshown: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return (self.complete and self.kills_in_windows == 0 and self.heals_in_attention == 0
                and not self.missing)

    def render(self, elapsed: float) -> str:
        c = self.counts
        lines = ["", "Summary"]
        lines += [f"  phase {pid:<12} {secs:6.1f}s" for pid, secs in self.phases]
        lines += [
            f"  pings          claim {c['ping:handoff.claim']}, review {c['ping:handoff.review']}, "
            f"inbox {c['ping:handoff.inbox']}",
            f"  limit windows  armed {c['limit-armed']}, probes {c['probe']}, lifted {c['limit-lifted']}, "
            f"kills inside windows {self.kills_in_windows}",
            f"  healing        nudges {c['nudge']}, warm restarts {c['restart-warm']}, "
            f"cold restarts {c['restart-cold']}, recreates {c['recreate']}",
            f"  declared wait  {'honoured' if ('adversary', 'Waiting') in self.states_seen else 'not seen'}",
            f"  attention      needs-attention {c['needs-attention']}, cleared {c['attention-cleared']}, "
            f"heals while it lasted {self.heals_in_attention}",
            f"  account holds  armed {c['hold-armed']}, lifted {c['hold-lifted']}",
            f"  approval gate  awaited {c['awaiting-approval']}, approved {c['approved']}",
            f"  sequence       {'COMPLETE' if self.complete else 'NOT complete'} in {elapsed:.0f}s",
        ]
        if self.unshown:
            lines.append("  not shown with these agents: " + "; ".join(self.unshown))
        if self.missing:
            lines.append("  MISSING: " + "; ".join(self.missing))
        lines.append("  result: " + ("OK" if self.ok else "FAILED"))
        return "\n".join(lines)


def _count(records: list[dict[str, Any]]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for r in records:
        if r["action"] == "EmitEvent":
            counts[r.get("kind", "")] += 1
        elif r["action"] == "SendText":
            purpose = r.get("purpose", "")
            counts[f"ping:{r['rule']}" if purpose == "ping" else purpose] += 1
        elif r["action"] == "RestartAgent":
            counts[f"restart-{r.get('mode')}"] += 1
        elif r["action"] == "RecreateHost":
            counts["recreate"] += 1
    return counts


def actions_between(
    records: list[dict[str, Any]], begin: str, end: str, counts: Callable[[dict[str, Any]], bool]
) -> int:
    """How many records ``counts`` accepts on a role between its ``begin`` and ``end`` events
    (EmitEvent kinds, e.g. limit-armed / limit-lifted); the phase's own completion stops are
    never counted."""
    open_roles: set[str] = set()
    found = 0
    for r in records:
        role = r.get("role")
        if r["action"] == "EmitEvent" and r.get("kind") == begin:
            open_roles.add(role)
        elif r["action"] == "EmitEvent" and r.get("kind") == end:
            open_roles.discard(role)
        elif role in open_roles and r.get("rule") != "phase.complete" and counts(r):
            found += 1
    return found


def kills_inside_windows(records: list[dict[str, Any]]) -> int:
    """Kill-type actions on a role between its limit-armed and limit-lifted events."""
    return actions_between(records, "limit-armed", "limit-lifted", lambda r: r["action"] in KILLS)


def heals_while_attention(records: list[dict[str, Any]]) -> int:
    """Heal actions (or nudges) on a role between its needs-attention and attention-cleared."""
    return actions_between(records, "needs-attention", "attention-cleared",
                           lambda r: r["action"] in KILLS or r["action"] == "SendText")


def phase_durations(records: list[dict[str, Any]]) -> list[tuple[str, float]]:
    marks = [r for r in records if r["action"] == "EmitEvent" and r.get("kind") in {"start", "advance", "complete"}]
    out: list[tuple[str, float]] = []
    for before, after in zip(marks, marks[1:], strict=False):
        start, end = datetime.fromisoformat(before["time"]), datetime.fromisoformat(after["time"])
        phase = after["reason"].split(" ")[1] if after["reason"].startswith(("phase", "last phase")) else "?"
        if after["reason"].startswith("last phase"):
            phase = after["reason"].split(" ")[2]
        out.append((phase, (end - start).total_seconds()))
    return out


def summarise(status: LoopPhaseStatus, records: list[dict[str, Any]],
              states_seen: set[tuple[str, str]] | None = None,
              unshown: tuple[str, ...] = ()) -> Summary:
    """``unshown``: mechanisms the chosen agents do not play (not required, listed as such)."""
    counts = _count(records)
    summary = Summary(
        complete=status.completed_at is not None,
        phases=phase_durations(records),
        counts=counts,
        kills_in_windows=kills_inside_windows(records),
        heals_in_attention=heals_while_attention(records),
        states_seen=states_seen or set(),
        unshown=unshown,
    )
    expected = {
        "claim ping": counts["ping:handoff.claim"] >= 3,
        "review ping": counts["ping:handoff.review"] >= 3,
        "inbox ping": counts["ping:handoff.inbox"] >= 1,
        "limit window armed": counts["limit-armed"] >= 1,
        "limit probe": counts["probe"] >= 1,
        "limit lifted": counts["limit-lifted"] >= 1,
        "stall healed": counts["nudge"] + counts["restart-warm"] >= 1,
        "fatal restarted cold": counts["restart-cold"] >= 1,
        "phase advanced": counts["advance"] >= 2,
        "login needs attention": any(
            r.get("kind") == "needs-attention" and "login" in r.get("reason", "") for r in records),
        "attention cleared": counts["attention-cleared"] >= 1,
        "account hold armed": counts["hold-armed"] >= 1,
        "account hold lifted": counts["hold-lifted"] >= 1,
        "approval awaited and given": counts["awaiting-approval"] >= 1 and counts["approved"] >= 1,
    }
    if states_seen is not None:
        expected["declared wait"] = ("adversary", "Waiting") in states_seen
    summary.missing = [name for name, seen in expected.items() if not seen and name not in unshown]
    return summary

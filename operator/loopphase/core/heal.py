"""The escalation ladder, pure: gentle first, harder only when the gentler tier failed.

Tiers: 1 nudge (type a line) -> 2 warm restart -> 3 cold restart -> 4 recreate the host.
Where a tier makes no sense the ladder starts higher: no process means no cooperative tier
(dead -> 2), a poisoned or full conversation is never resumed (fatal, context-full -> 3), an
unreachable host can only be recreated (-> 4). After any heal action the ladder waits out the post-heal quiet (and the
tier cooldown) before judging again. Consecutive failures of the hardest tier open the circuit:
an alert, and no more healing until the agent is seen working again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from loopphase.api.spec import HealSpec
from loopphase.api.status import ActionKind, HealState

Problem = Literal["stalled", "dead", "fatal", "unreachable", "context-full"]
NUDGE, WARM, COLD, RECREATE = 1, 2, 3, 4
# A full context is never resumed warm (the same conversation fails again): cold first.
MIN_TIER: dict[Problem, int] = {
    "stalled": NUDGE, "dead": WARM, "fatal": COLD, "unreachable": RECREATE, "context-full": COLD,
}
TIER_KIND: dict[int, ActionKind] = {
    NUDGE: "nudge",
    WARM: "restart-warm",
    COLD: "restart-cold",
    RECREATE: "recreate",
}


@dataclass(frozen=True)
class HealStep:
    heal: HealState
    tier: int | None
    circuit_opened: bool = False
    waiting: bool = False


def healed(heal: HealState) -> HealState:
    """The agent was seen working: the ladder and the breaker start over."""
    if heal.tier == 0 and not heal.circuit_open and heal.consecutive_hard_failures == 0:
        return heal
    return HealState()


def step_heal(heal: HealState, problem: Problem, now: datetime, spec: HealSpec, reason: str) -> HealStep:
    if heal.circuit_open:
        return HealStep(heal, tier=None)
    if heal.last_action_at is not None:
        quiet = timedelta(seconds=max(spec.post_heal_quiet, spec.tier_cooldown))
        if now < heal.last_action_at + quiet:
            return HealStep(heal, tier=None, waiting=True)
    fresh = heal.tier == 0 or (heal.problem and heal.problem != problem)
    # A different problem means the last heal fixed its own: this one starts its own ladder.
    tier = MIN_TIER[problem] if fresh else max(heal.tier + 1, MIN_TIER[problem])
    failures = 0 if fresh else heal.consecutive_hard_failures
    if tier > RECREATE:
        failures += 1
        if failures >= spec.circuit_breaker:
            opened = heal.model_copy(
                update={
                    "consecutive_hard_failures": failures,
                    "circuit_open": True,
                    "reason": f"{failures} recreates did not help: {reason}",
                }
            )
            return HealStep(opened, tier=None, circuit_opened=True)
        tier = RECREATE
    applied = heal.model_copy(
        update={
            "tier": tier,
            "last_action_at": now,
            "consecutive_hard_failures": failures,
            "problem": problem,
            "reason": reason,
        }
    )
    return HealStep(applied, tier=tier)

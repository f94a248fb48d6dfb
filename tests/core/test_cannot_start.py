"""A host that cannot start for a reason that will not change: NeedsAttention(CannotStart) at
once with the whole reason, never healed, no circuit; cleared (and started) when it is gone."""

from __future__ import annotations

from loopphase.core.actions import EmitEvent, StartAgent
from loopphase.core.observations import AgentObservation

from tests.core.reconcile_helpers import PANE_ACTIVE, World, absent, agent

CAUSE = ("spec.agents.builder.simScenario: scenario file /home/u/loop/scenarios/builder.yaml does not "
         "exist (a one-line simScenario is a path relative to the spec file; inline scenarios are "
         "YAML mappings with 'phases')")


def test_cannot_start_is_attention_at_once_and_never_healed() -> None:
    world = World()
    refused = AgentObservation(role="builder", present=False, cannot_start=CAUSE)
    first = world.tick({"builder": refused, "adversary": absent("adversary")})
    builder = world.status.agents["builder"]
    assert builder.state == "NeedsAttention"
    assert builder.attention is not None and builder.attention.reason == "CannotStart"
    assert builder.attention.message == CAUSE  # the whole cause, not cut
    assert builder.reason == CAUSE
    assert not any(isinstance(a, StartAgent) and a.role == "builder" for a in first)
    notes = [a for a in first if isinstance(a, EmitEvent) and a.role == "builder"]
    assert [n.kind for n in notes] == ["needs-attention"] and notes[0].warning
    # Six minutes of the same answer: no start, no heal, no circuit, no repeated note.
    for _ in range(36):
        actions = world.tick({"builder": refused, "adversary": agent("adversary", PANE_ACTIVE)}, advance=10)
        assert [a for a in actions if a.role == "builder"] == []
    builder = world.status.agents["builder"]
    assert builder.state == "NeedsAttention" and builder.heal.tier == 0 and not builder.heal.circuit_open


def test_cannot_start_clears_and_the_role_starts_when_the_cause_is_gone() -> None:
    world = World()
    world.tick({"builder": AgentObservation(role="builder", present=False, cannot_start=CAUSE),
                "adversary": absent("adversary")})
    actions = world.tick({"builder": absent("builder"), "adversary": absent("adversary")}, advance=5)
    assert any(isinstance(a, StartAgent) and a.role == "builder" for a in actions)
    assert any(isinstance(a, EmitEvent) and a.kind == "attention-cleared" for a in actions)
    assert world.status.agents["builder"].attention is None


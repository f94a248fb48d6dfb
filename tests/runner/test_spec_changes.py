"""What `loopphase run` prints when the spec file changes: every change visible (a trial: both
sides of a phases edit were cut to one 80-character prefix, so nothing showed what changed)."""

from __future__ import annotations

from loopphase.runner.loop import spec_changes

PHASES = [{"id": "phase-1", "plan": "plans/PHASE-1.md", "statusFile": "STATUS-phase-1.md"},
          {"id": "phase-2", "plan": "plans/PHASE-2.md", "statusFile": "STATUS-phase-2.md"}]


def test_an_inserted_phase_is_named_with_its_position() -> None:
    new = [{"id": "phase-0", "plan": "plans/PHASE-1.md", "statusFile": "STATUS-phase-0.md"}, *PHASES]
    assert spec_changes({"phases": PHASES}, {"phases": new}) == ["spec.phases: added phase-0 at [0]"]


def test_removed_reordered_and_edited_phases() -> None:
    edited = {**PHASES[0], "plan": "plans/NEW.md"}
    assert spec_changes({"phases": PHASES}, {"phases": [PHASES[1], edited]}) == [
        "spec.phases: order phase-1, phase-2 -> phase-2, phase-1",
        'spec.phases[1].plan: "plans/PHASE-1.md" -> "plans/NEW.md"',
    ]
    assert spec_changes({"phases": PHASES}, {"phases": PHASES[:1]}) == [
        "spec.phases: removed phase-2 (was [1])"]


def test_lists_without_ids_change_by_position() -> None:
    old = {"agents": {"builder": {"env": [{"name": "A"}, {"name": "B"}]}}}
    new = {"agents": {"builder": {"env": [{"name": "A"}]}}}
    assert spec_changes(old, new) == ['spec.agents.builder.env[1]: {"name": "B"} -> (unset)']

"""Editing spec.phases during or after a run (issue 12): the current phase is tracked by id,
its agents keep running when it moves, and progress/Complete count verified DONEs by id."""

from __future__ import annotations

from typing import Any

from loopphase.api.spec import LoopPhaseSpec

from tests.core.reconcile_helpers import PANE_ACTIVE, World, absent, both, git, of_type


def phases(*ids: str) -> list[dict[str, Any]]:
    return [{"id": i, "plan": f"plans/{i}.md", "statusFile": f"STATUS-{i}.md"} for i in ids]


def spec_of(*ids: str) -> LoopPhaseSpec:
    return LoopPhaseSpec.model_validate(
        {"repo": {"url": "https://example.invalid/repo.git"}, "phases": phases(*ids)}
    )


def done(phase: str) -> dict[str, str | None]:
    return {f"machine-docs/STATUS-{phase}.md": "## DONE\n"}


NOBODY = {"builder": absent("builder"), "adversary": absent("adversary")}


def run_into(world: World, index: int, head: str) -> None:
    """After an advance: the old hosts go, the new phase's agents start and run."""
    world.tick(NOBODY, git(head), advance=1)
    world.tick(both(PANE_ACTIVE, phase=index), git(head), advance=1)


def test_a_phase_inserted_before_the_running_one_keeps_its_agents_and_is_not_counted_done():
    world = World(spec=spec_of("p1", "p2"))
    world.started()  # p1 running at index 0
    world.spec = spec_of("p0", "p1", "p2")
    acts = world.tick(both(PANE_ACTIVE, phase=0), git("base0"), advance=1)
    assert of_type(acts, "StopAgent") == of_type(acts, "RestartAgent") == []
    assert (world.status.current.id, world.status.current.index) == ("p1", 1)
    assert world.status.progress == "0/3"
    assert not any(h.kind == "advance" for h in world.status.history)
    assert any(h.kind == "phases-edited" for h in world.status.history)
    # p1 DONE -> p2 (the next later phase), then the inserted p0, then Complete.
    world.tick(both(PANE_ACTIVE, phase=0), git("h1", files=done("p1")), advance=1)
    assert world.status.current.id == "p2"
    assert world.status.progress == "1/3"
    run_into(world, 2, "h1")
    world.tick(both(PANE_ACTIVE, phase=2), git("h2", files=done("p2")), advance=1)
    assert world.status.completed_at is None
    assert world.status.current.id == "p0"
    assert world.status.progress == "2/3"
    assert world.status.phase != "Complete"
    run_into(world, 0, "h2")
    world.tick(both(PANE_ACTIVE, phase=0), git("h3", files=done("p0")), advance=1)
    assert world.status.phase == "Complete"
    assert world.status.progress == "3/3"
    assert world.status.done_phases == ["p1", "p2", "p0"]


def test_a_phase_appended_to_a_finished_loop_reopens_it_and_starts():
    world = World(spec=spec_of("p1", "p2"))
    world.started()
    world.tick(both(PANE_ACTIVE), git("h1", files=done("p1")), advance=1)
    run_into(world, 1, "h1")
    world.tick(both(PANE_ACTIVE, phase=1), git("h2", files=done("p2")), advance=1)
    assert world.status.phase == "Complete"
    world.tick(NOBODY, git("h2"), advance=1)
    world.spec = spec_of("p1", "p2", "p3")
    acts = world.tick(NOBODY, git("h2"), advance=1)
    assert world.status.completed_at is None
    assert world.status.current.id == "p3"
    assert world.status.progress == "2/3"
    starts = of_type(acts, "StartAgent")
    assert sorted((s.role, s.phase_index, s.mode) for s in starts) == [
        ("adversary", 2, "cold"), ("builder", 2, "cold")]
    assert world.status.phase != "Complete"


def test_removing_a_phase_that_is_not_running_keeps_the_running_agents():
    world = World(spec=spec_of("p1", "p2", "p3"))
    world.started()
    world.tick(both(PANE_ACTIVE), git("h1", files=done("p1")), advance=1)
    run_into(world, 1, "h1")  # p2 runs at index 1
    world.spec = spec_of("p2", "p3")
    acts = world.tick(both(PANE_ACTIVE, phase=1), git("h1"), advance=1)
    assert of_type(acts, "StopAgent") == of_type(acts, "RestartAgent") == []
    assert (world.status.current.id, world.status.current.index) == ("p2", 0)
    assert world.status.progress == "0/2"  # p1 was done, but it is no longer a phase
    # Its agents are still recognised as the current phase's on later ticks.
    acts = world.tick(both(PANE_ACTIVE, phase=1), git("h1"), advance=30)
    assert of_type(acts, "StopAgent") == []


def test_a_status_from_before_id_tracking_counts_the_phases_before_the_current_one():
    world = World(spec=spec_of("p1", "p2", "p3"))
    world.started()
    world.tick(both(PANE_ACTIVE), git("h1", files=done("p1")), advance=1)
    world.status = world.status.model_copy(update={"done_phases": None})
    world.tick(both(PANE_ACTIVE, phase=1), git("h1"), advance=1)
    assert world.status.done_phases == ["p1"]
    assert world.status.progress == "1/3"


def test_an_explicit_jump_back_runs_the_later_phases_again():
    world = World(spec=spec_of("p1", "p2", "p3"))
    world.started()
    world.tick(both(PANE_ACTIVE), git("h1", files=done("p1")), advance=1)
    run_into(world, 1, "h1")
    world.tick(both(PANE_ACTIVE, phase=1), git("h2", files=done("p2")), advance=1)
    assert world.status.current.id == "p3" and world.status.progress == "2/3"
    world.spec = LoopPhaseSpec.model_validate({**world.spec.model_dump(by_alias=True), "startAt": "p1"})
    world.tick(NOBODY, git("h2"), advance=1)
    assert world.status.current.id == "p1"
    assert world.status.done_phases == [] and world.status.progress == "0/3"

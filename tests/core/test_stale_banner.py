"""A limit box left on screen after the CLI resumed is not a new limit (found with the real
Claude Code in `loopphase demo --agents claude`: after its own resume, the old "Usage limit
reached · continuing automatically at 2:55pm" box stayed in the banner region, was read as a
reset 24 h ahead, re-armed the window and, through the account hold, held the other agent)."""

from __future__ import annotations

from tests.core.reconcile_helpers import T0, World, agent

# T0 is 10:00 UTC. The banner states 10:40; the CLI continues by itself at 10:41.
BOX = ("5-hour limit reached ∙ resets 10:40am\n"
       "● Usage limit reached · continuing automatically at 10:41am · esc to cancel\n")
LIMITED = f"Working on gate 2\n\n{BOX}> "
WORKING_UNDER_BOX = f"{BOX}\nResuming the gate\n\n⠋ Working… (3s · esc to interrupt)\n> "
IDLE_UNDER_BOX = f"{BOX}\nGate 2 pushed.\n\n> "
CLEAN = "Gate 2 pushed.\n\nAll done for now.\n> "
NEW_LIMIT = "Gate 3 started\n\n5-hour limit reached ∙ resets 3:40pm\n> "


def tick(world: World, builder: str, advance: float) -> None:
    world.tick({"builder": agent("builder", builder, changed=world.now),
                "adversary": agent("adversary", CLEAN, changed=T0)}, advance=advance)


def test_the_box_left_after_a_resume_does_not_re_arm_and_a_new_limit_does() -> None:
    world = World()
    world.started()
    tick(world, LIMITED, 1)
    builder = world.status.agents["builder"]
    assert builder.limit is not None and builder.state == "Limited"
    tick(world, WORKING_UNDER_BOX, 45 * 60)  # 10:46: the CLI resumed by itself
    builder = world.status.agents["builder"]
    assert builder.limit is None and builder.state == "Active"
    assert builder.stale_banners
    tick(world, IDLE_UNDER_BOX, 20)  # the turn ended; the old box is still in view
    builder = world.status.agents["builder"]
    assert builder.limit is None, builder.limit  # not re-armed from the leftover box
    assert builder.state != "Limited"
    assert not world.status.holds
    tick(world, CLEAN, 20)  # the box scrolled away: the memory is dropped
    assert world.status.agents["builder"].stale_banners == []
    tick(world, NEW_LIMIT, 20)  # a new limit, a new reset: armed
    builder = world.status.agents["builder"]
    assert builder.limit is not None and "3:40pm" in builder.limit.excerpt

"""Rule tables for reconcile: one test per mechanism of REFERENCE.md §1-§2."""

from __future__ import annotations

from datetime import timedelta

import pytest
from loopphase.api.status import LoopPhaseStatus
from loopphase.core.actions import RecreateHost, RestartAgent, SendText, StartAgent, StopAgent
from loopphase.core.observations import AgentObservation, Observations
from loopphase.core.reconcile import reconcile, settle

from tests.core.reconcile_helpers import (
    PANE_ACTIVE,
    PANE_FATAL,
    PANE_IDLE,
    T0,
    World,
    absent,
    agent,
    banner,
    both,
    git,
    kinds,
    make_spec,
    of_type,
    waiting,
)

# -- start, idempotence, startAt ----------------------------------------------------------------


def test_first_tick_starts_both_roles_cold_and_repeating_it_does_nothing():
    world = World()
    first = world.tick({"builder": absent("builder"), "adversary": absent("adversary")})
    starts = of_type(first, "StartAgent")
    assert [(a.role, a.mode, a.phase_index) for a in starts] == [
        ("builder", "cold", 0), ("adversary", "cold", 0)]
    again, status_again = reconcile(world.spec, world.status, Observations(
        {"builder": absent("builder"), "adversary": absent("adversary")}), world.now)
    assert again == []
    assert status_again == world.status


def test_unchanged_world_yields_no_actions_and_identical_status():
    world = World()
    world.started()
    obs = Observations(both(PANE_IDLE, changed=world.now), git("base0"))
    actions1, status1 = reconcile(world.spec, world.status, obs, world.now + timedelta(seconds=5))
    actions2, status2 = reconcile(world.spec, status1, obs, world.now + timedelta(seconds=5))
    assert actions2 == []
    assert status2 == status1


def test_start_at_is_honoured_once_and_a_change_is_an_explicit_jump():
    world = World(spec=make_spec(startAt="p2"))
    world.tick({"builder": absent("builder"), "adversary": absent("adversary")})
    assert world.status.current.id == "p2"
    world.tick(both(PANE_ACTIVE, phase=1), advance=1)
    assert world.status.current.id == "p2"
    world.spec = make_spec(startAt="p3")
    world.tick(both(PANE_ACTIVE, phase=1), advance=1)
    assert world.status.current.id == "p3"
    assert any(h.rule == "spec.startAt" for h in world.status.history)


def test_a_status_without_start_at_never_resets_to_the_first_phase():
    world = World()
    world.status = LoopPhaseStatus.model_validate(
        {"current": {"index": 2, "id": "p3"}, "handoff": {"lastSeenSha": "x"}})
    world.tick(both(PANE_ACTIVE, phase=2))
    assert world.status.current.index == 2


# -- limit windows ------------------------------------------------------------------------------


def test_banner_arms_a_window_until_reset_plus_slack():
    world = World()
    world.started()
    world.tick({"builder": agent("builder", banner("12:30pm")), "adversary": agent("adversary", PANE_ACTIVE)}, advance=5)
    window = world.status.agents["builder"].limit
    assert window is not None and window.parsed
    assert window.until == T0.replace(hour=12, minute=30) + timedelta(seconds=45)
    assert world.status.agents["builder"].state == "Limited"
    assert world.status.phase == "Limited"


def test_nothing_happens_inside_a_window_however_long_idle():
    world = World()
    world.started()
    obs = {"builder": agent("builder", banner("12:30pm"), changed=T0), "adversary": agent("adversary", PANE_ACTIVE)}
    world.tick(obs, advance=5)
    for _ in range(10):
        actions = world.tick(obs, advance=600)  # 100 minutes idle inside the window
        assert of_type(actions, "RestartAgent") == of_type(actions, "RecreateHost") == []
        assert of_type(actions, "SendText", "builder") == []


def test_one_probe_when_the_window_ends_then_quiet_again():
    world = World()
    world.started()
    obs = {"builder": agent("builder", banner("10:05am")), "adversary": agent("adversary", PANE_ACTIVE)}
    world.tick(obs, advance=1)
    probes = of_type(world.tick(obs, advance=6 * 60), "SendText", "builder")
    assert len(probes) == 1 and probes[0].purpose == "probe"
    # Same screen again at the same moment and a little later: no second probe.
    assert of_type(world.tick(obs), "SendText", "builder") == []
    assert of_type(world.tick(obs, advance=30), "SendText", "builder") == []
    assert world.status.agents["builder"].limit.nudges == 1


def test_an_early_probe_on_a_minute_granular_reset_is_retried_once_after_a_minute():
    """"resets 10:05am" may mean 10:05:50: the first probe (10:05:45) can come early. One retry
    a minute later, then the flat cadence, never a restart."""
    world = World()
    world.started()
    obs = {"builder": agent("builder", banner("10:05am")), "adversary": agent("adversary", PANE_ACTIVE)}
    world.tick(obs, advance=1)
    until = world.status.agents["builder"].limit.until
    world.now = until - timedelta(seconds=1)
    assert of_type(world.tick(obs), "SendText", "builder") == []
    probes = []
    for _ in range(25):  # 10:05:45 .. 10:10:45 in 12.5 s steps: first probe and one retry
        probes += [(world.now, a) for a in of_type(world.tick(obs, advance=12.5), "SendText", "builder")]
    assert [a.purpose for _, a in probes] == ["probe", "probe"]
    # the first tick at or after 60 s (ticks are 12.5 s apart here)
    assert timedelta(seconds=60) <= probes[1][0] - probes[0][0] < timedelta(seconds=72.5)
    assert any("one retry in 60s" in h.reason for h in world.status.history)
    # after the retry, the flat cadence (300 s): nothing more in the next 4 minutes
    assert world.status.agents["builder"].limit.until == probes[1][0] + timedelta(seconds=300)


def test_a_late_first_probe_gets_no_quick_retry():
    """A window probed long after the stated reset (host was down, supervisor restarted...)
    goes straight to the flat cadence: the quick retry is only for a probe that may be early."""
    world = World()
    world.started()
    obs = {"builder": agent("builder", banner("10:05am")), "adversary": agent("adversary", PANE_ACTIVE)}
    world.tick(obs, advance=1)
    world.tick(obs, advance=15 * 60)  # first look after the window: 10:15
    assert world.status.agents["builder"].limit.until == world.now + timedelta(seconds=300)


def test_no_probe_while_the_probe_text_sits_in_the_input_area():
    world = World()
    world.started()
    probe = " ".join(world.spec.texts.limit_probe.split())
    typed = banner("10:05am").rstrip("> ") + "> " + probe
    world.tick({"builder": agent("builder", banner("10:05am")), "adversary": agent("adversary", PANE_ACTIVE)}, advance=1)
    actions = world.tick({"builder": agent("builder", typed), "adversary": agent("adversary", PANE_ACTIVE)}, advance=600)
    assert of_type(actions, "SendText", "builder") == []


def test_probe_in_scrollback_does_not_block_the_next_probe():
    world = World()
    world.started()
    probe = " ".join(world.spec.texts.limit_probe.split())
    scrolled = probe + "\n" + "\n".join(f"line {i}" for i in range(20)) + "\n" + banner("10:05am")
    world.tick({"builder": agent("builder", banner("10:05am")), "adversary": agent("adversary", PANE_ACTIVE)}, advance=1)
    actions = world.tick({"builder": agent("builder", scrolled), "adversary": agent("adversary", PANE_ACTIVE)}, advance=600)
    assert len(of_type(actions, "SendText", "builder")) == 1


def test_window_lifts_when_active_again():
    world = World()
    world.started()
    world.tick({"builder": agent("builder", banner("10:05am")), "adversary": agent("adversary", PANE_ACTIVE)}, advance=1)
    world.tick(both(PANE_ACTIVE), advance=400)
    assert world.status.agents["builder"].limit is None
    assert any(h.kind == "limit-lifted" for h in world.status.history)


def test_stale_time_only_banner_is_probed_after_the_slack():
    world = World()
    world.started()
    # 9:55am already passed: the next 9:55am is ~24h away, beyond the 6h horizon.
    world.tick({"builder": agent("builder", banner("9:55am")), "adversary": agent("adversary", PANE_ACTIVE)}, advance=1)
    window = world.status.agents["builder"].limit
    assert not window.parsed
    assert window.until == world.now + timedelta(seconds=45)


def test_unparsable_banner_probes_at_the_flat_cadence():
    world = World()
    world.started()
    pane = "work\n\nYou've hit your usage limit · contact your admin to increase it\n> "
    world.tick({"builder": agent("builder", pane), "adversary": agent("adversary", PANE_ACTIVE)}, advance=1)
    window = world.status.agents["builder"].limit
    assert window is not None and not window.parsed
    assert window.until == world.now + timedelta(seconds=300)


def test_pings_reach_an_agent_that_is_up_within_its_start_grace():
    from dataclasses import replace
    world = World()
    world.tick({"builder": absent("builder"), "adversary": absent("adversary")}, git("h0"))
    fresh = {r: replace(o, started_at=world.now + timedelta(seconds=1)) for r, o in both(PANE_IDLE).items()}
    acts = world.tick(fresh, git("h1", "claim(g): x"), advance=2)
    assert [a.role for a in of_type(acts, "SendText")] == ["adversary"]
    assert world.status.agents["adversary"].idle_since is None  # not judged idle yet


def test_warning_after_three_probes_and_still_never_restarted():
    world = World()
    world.started()
    obs = {"builder": agent("builder", banner("10:05am"), changed=T0), "adversary": agent("adversary", PANE_ACTIVE)}
    world.tick(obs, advance=1)
    all_actions = []
    for _ in range(5):
        all_actions += world.tick(obs, advance=400)
    assert world.status.agents["builder"].limit.nudges == 5
    assert any(h.rule == "limit.probe-warn" for h in world.status.history)
    assert not [a for a in all_actions if isinstance(a, RestartAgent | RecreateHost | StopAgent)]


def test_soft_warning_is_not_a_window():
    world = World()
    world.started()
    soft = "Approaching usage limit · resets at 2pm\n⠋ Working… (esc to interrupt)\n> "
    world.tick(both(soft), advance=5)
    assert world.status.agents["builder"].limit is None
    assert world.status.agents["builder"].state == "Active"


def test_pings_are_held_while_the_role_is_limited_and_delivered_after():
    world = World()
    world.started()
    limited = {"builder": agent("builder", PANE_ACTIVE), "adversary": agent("adversary", banner("10:05am"))}
    actions = world.tick(limited, git("h1", "claim(gate-1): widgets"), advance=1)
    assert of_type(actions, "SendText", "adversary") == []
    assert len(world.status.handoff.pending_pings) == 1
    actions = world.tick(both(PANE_ACTIVE), git("h1"), advance=600)
    pings = of_type(actions, "SendText", "adversary")
    assert [p.purpose for p in pings] == ["ping"]


# -- stalls and the heal ladder -----------------------------------------------------------------


def test_idle_below_threshold_is_just_idle():
    world = World()
    world.started()
    actions = world.tick(both(PANE_IDLE, changed=world.now), advance=299)
    assert [a for a in actions if type(a).__name__ != "EmitEvent"] == []
    assert world.status.agents["builder"].state == "Idle"


def test_stall_ladder_nudge_warm_cold_recreate_then_circuit_open():
    world = World()
    world.started()
    stuck = both(PANE_IDLE, changed=world.now)
    world.tick(stuck, advance=1)  # idle clock starts
    seen = []
    for _ in range(12):
        actions = world.tick(stuck, advance=400)
        seen += [(type(a).__name__, getattr(a, "mode", getattr(a, "purpose", None)))
                 for a in actions if a.role == "builder" and type(a).__name__ != "EmitEvent"]
    assert seen[:4] == [("SendText", "nudge"), ("RestartAgent", "warm"),
                        ("RestartAgent", "cold"), ("RecreateHost", "warm")]
    assert seen[4:] == [("RecreateHost", "warm"), ("RecreateHost", "warm")]
    assert world.status.agents["builder"].heal.circuit_open
    assert world.status.condition("Degraded").status == "True"


def test_heal_waits_out_the_post_heal_quiet():
    world = World()
    world.started()
    stuck = both(PANE_IDLE, changed=world.now)
    world.tick(stuck, advance=1)
    world.tick(stuck, advance=300)  # nudge
    actions = world.tick(stuck, advance=30)  # within quiet (60 s)
    assert of_type(actions, "RestartAgent") == []


def test_activity_resets_the_ladder():
    world = World()
    world.started()
    stuck = both(PANE_IDLE, changed=world.now)
    world.tick(stuck, advance=1)
    world.tick(stuck, advance=400)
    assert world.status.agents["builder"].heal.tier == 1
    world.tick(both(PANE_ACTIVE), advance=10)
    assert world.status.agents["builder"].heal.tier == 0


def test_dead_agent_skips_the_nudge():
    world = World()
    world.started()
    actions = world.tick({"builder": agent("builder", "", alive=False), "adversary": agent("adversary", PANE_ACTIVE)}, advance=120)
    restarts = of_type(actions, "RestartAgent", "builder")
    assert [(r.mode) for r in restarts] == ["warm"]
    assert of_type(actions, "SendText", "builder") == []


def test_fatal_goes_straight_to_a_cold_restart_and_is_never_resumed():
    world = World()
    world.started()
    actions = world.tick({"builder": agent("builder", PANE_FATAL), "adversary": agent("adversary", PANE_ACTIVE)}, advance=120)
    restarts = of_type(actions, "RestartAgent", "builder")
    assert [r.mode for r in restarts] == ["cold"]
    assert world.status.agents["builder"].session_id is None


def test_unreachable_host_beyond_grace_is_recreated():
    world = World()
    world.started()
    obs = {"builder": agent("builder", None, error="connection refused"), "adversary": agent("adversary", PANE_ACTIVE)}
    actions = world.tick(obs, advance=120)
    assert len(of_type(actions, "RecreateHost", "builder")) == 1


def test_a_host_the_platform_is_still_preparing_waits_for_host_start_timeout_then_is_recreated():
    """A Pending pod (slow image pull, volume binding) is Starting with the platform's reason,
    not recreated after the start grace; only past timing.hostStartTimeout (from the host's
    creation) is it healed like any unreachable host."""
    world = World(spec=make_spec(timing={"startGrace": "60s", "hostStartTimeout": "10m"}))
    world.tick({"builder": absent("builder"), "adversary": absent("adversary")})
    created = world.now

    def pulling() -> dict:
        return {
            "builder": AgentObservation(
                role="builder", present=True, alive=False, phase_index=0, started_at=created,
                host_pending=True,
                error="pod demo-builder has no IP yet (Pending: ImagePullBackOff: back-off)"),
            "adversary": agent("adversary", PANE_ACTIVE),
        }

    for _ in range(5):  # 2 min .. 9 min 40 s after the pod was created: far past the grace
        actions = world.tick(pulling(), advance=116)
        assert of_type(actions, "RecreateHost", "builder") == []
        builder = world.status.agents["builder"]
        assert builder.state == "Starting" and "ImagePullBackOff" in builder.reason
    actions = world.tick(pulling(), advance=30)  # 10 min 10 s
    assert len(of_type(actions, "RecreateHost", "builder")) == 1


def test_opencode_uses_its_longer_idle_threshold():
    world = World(spec=make_spec(agents={"builder": {"backend": "opencode", "opencodeServer": "http://oc:4096"}}))
    world.started()
    stuck = both(PANE_IDLE, changed=world.now)
    world.tick(stuck, advance=1)
    assert of_type(world.tick(stuck, advance=400), "SendText", "builder") == []
    assert len(of_type(world.tick(stuck, advance=500), "SendText", "builder")) == 1


# -- declared waits -----------------------------------------------------------------------------


def test_declared_wait_is_honoured_until_its_time_plus_grace():
    world = World()
    world.started()
    until = world.now + timedelta(minutes=20)
    obs = both(waiting(until), changed=world.now)
    world.tick(obs, advance=1)
    assert world.status.agents["builder"].state == "Waiting"
    for _ in range(4):
        acts = world.tick(obs, advance=300)
        assert of_type(acts, "SendText") == of_type(acts, "RestartAgent") == []
    acts = world.tick(obs, advance=200)  # 20m + 181s past the marker
    assert len(of_type(acts, "SendText", "builder")) == 1


def test_absurd_far_future_wait_is_capped():
    world = World()
    world.started()
    obs = both(waiting(world.now + timedelta(days=30)), changed=world.now)
    world.tick(obs, advance=1)
    assert world.status.agents["builder"].waiting_until == world.now + timedelta(hours=6)


# -- handoffs -----------------------------------------------------------------------------------


def test_claim_pings_adversary_and_review_pings_builder_exactly_once():
    world = World()
    world.started()
    acts = world.tick(both(PANE_IDLE, changed=world.now), git("h1", "claim(gate-1): x"), advance=1)
    assert [(a.role, a.rule) for a in of_type(acts, "SendText")] == [("adversary", "handoff.claim")]
    acts = world.tick(both(PANE_IDLE, changed=world.now), git("h1"), advance=1)
    assert of_type(acts, "SendText") == []
    acts = world.tick(both(PANE_IDLE, changed=world.now), git("h2", "review(gate-1): PASS"), advance=1)
    assert [(a.role, a.rule) for a in of_type(acts, "SendText")] == [("builder", "handoff.review")]


def test_several_claims_coalesce_into_one_ping():
    world = World()
    world.started()
    acts = world.tick(both(PANE_IDLE, changed=world.now), git("h1", "claim(g1): a", "claim(g2): b"), advance=1)
    assert len(of_type(acts, "SendText", "adversary")) == 1


def test_first_observation_baselines_without_pinging_old_commits():
    world = World()
    world.tick({"builder": absent("builder"), "adversary": absent("adversary")},
               git("h0", "claim(old): before we started"))
    assert world.status.handoff.pending_pings == []
    assert world.status.handoff.last_seen_sha == "h0"


def test_inbox_change_pings_reader_once_and_deletion_is_forgotten():
    world = World()
    world.started()
    files = {"machine-docs/ADVERSARY-INBOX.md": "please look at X"}
    acts = world.tick(both(PANE_IDLE, changed=world.now), git("h1", files=files), advance=1)
    assert [(a.role, a.rule) for a in of_type(acts, "SendText")] == [("adversary", "handoff.inbox")]
    acts = world.tick(both(PANE_IDLE, changed=world.now), git("h1", files=files), advance=1)
    assert of_type(acts, "SendText") == []
    world.tick(both(PANE_IDLE, changed=world.now), git("h2", files={}), advance=1)
    assert "adversary" not in world.status.handoff.inbox_hashes
    acts = world.tick(both(PANE_IDLE, changed=world.now), git("h3", files=files), advance=1)
    assert len(of_type(acts, "SendText", "adversary")) == 1


def test_force_push_is_reported_and_rebaselined_without_pings():
    world = World()
    world.started()
    acts = world.tick(both(PANE_IDLE, changed=world.now), git("rewritten", force=True), advance=1)
    assert of_type(acts, "SendText") == []
    assert any(h.kind == "force-push" for h in world.status.history)
    assert world.status.handoff.last_seen_sha == "rewritten"


def test_unreachable_remote_degrades_and_changes_no_phase():
    world = World()
    world.started()
    from loopphase.core.observations import GitObservation
    world.tick(both(PANE_ACTIVE), GitObservation(reachable=False, error="timeout"), advance=1)
    assert world.status.condition("Degraded").status == "True"
    assert world.status.current.index == 0


def test_failed_ping_is_requeued_by_settle():
    world = World()
    world.started()
    acts = world.tick(both(PANE_IDLE, changed=world.now), git("h1", "claim(g): x"), advance=1)
    ping = of_type(acts, "SendText", "adversary")[0]
    status = settle(world.spec, world.status, [(ping, False, "busy")], world.now)
    assert [(p.role, p.kind, p.attempts) for p in status.handoff.pending_pings] == [("adversary", "claim", 1)]


# -- DONE and phases ----------------------------------------------------------------------------

DONE_FILE = {"machine-docs/STATUS-p1.md": "# status\n\n## DONE\n"}


@pytest.mark.parametrize(
    ("content", "advances"),
    [
        ("## DONE\n", True),
        ("## DONE   \n", True),
        ("notes\n## DONE criteria\n", False),
        ("### DONE\n", False),
        ("all is ## DONE\n", False),
    ],
)
def test_done_marker_is_a_line_exactly_equal_to_the_marker(content, advances):
    world = World()
    world.started()
    world.tick(both(PANE_ACTIVE), git("h1", files={"machine-docs/STATUS-p1.md": content}), advance=1)
    assert (world.status.current.index == 1) is advances


def test_done_in_root_status_file_when_state_dir_lacks_it():
    world = World()
    world.started()
    world.tick(both(PANE_ACTIVE), git("h1", files={"STATUS-p1.md": "## DONE\n"}), advance=1)
    assert world.status.current.index == 1


def test_advance_stops_old_agents_first_then_starts_new_phase_cold():
    world = World()
    world.started()
    acts = world.tick(both(PANE_ACTIVE), git("h1", files=DONE_FILE), advance=1)
    assert world.status.current.id == "p2"
    assert kinds(of_type(acts, "StopAgent")) == [("StopAgent", "builder"), ("StopAgent", "adversary")]
    assert of_type(acts, "StartAgent") == []
    assert world.status.phase == "Advancing"
    # Old hosts still reported: no second stop yet, and still no start.
    acts = world.tick(both(PANE_ACTIVE, phase=0), git("h1"), advance=1)
    assert of_type(acts, "StopAgent") == of_type(acts, "StartAgent") == []
    acts = world.tick({"builder": absent("builder"), "adversary": absent("adversary")}, git("h1"), advance=1)
    starts = of_type(acts, "StartAgent")
    assert [(s.role, s.mode, s.phase_index) for s in starts] == [("builder", "cold", 1), ("adversary", "cold", 1)]
    assert sum(1 for h in world.status.history if h.kind == "advance") == 1


def test_require_review_blocks_done_until_a_pass_review_follows_the_last_claim():
    world = World(spec=make_spec(done={"requireReview": True}))
    world.started()
    world.tick(both(PANE_ACTIVE), git("h1", "claim(g1): x", files=DONE_FILE), advance=1)
    assert world.status.current.index == 0
    assert any(h.rule == "done.precondition" for h in world.status.history)
    world.tick(both(PANE_ACTIVE), git("h2", "review(g1): FAIL missing test", files=DONE_FILE), advance=1)
    assert world.status.current.index == 0
    world.tick(both(PANE_ACTIVE), git("h3", "review(g1): PASS", files=DONE_FILE), advance=1)
    assert world.status.current.index == 1


def test_last_phase_done_completes_and_stops_everything():
    world = World(spec=make_spec(startAt="p3"))
    world.tick({"builder": absent("builder"), "adversary": absent("adversary")})
    world.tick(both(PANE_ACTIVE, phase=2), git("h0"), advance=1)
    acts = world.tick(both(PANE_ACTIVE, phase=2), git("h1", files={"machine-docs/STATUS-p3.md": "## DONE"}), advance=1)
    assert world.status.phase == "Complete"
    assert world.status.progress == "3/3"
    assert {a.role for a in of_type(acts, "StopAgent")} == {"builder", "adversary"}


def test_limited_agent_of_the_previous_phase_is_not_killed_until_its_window_ends():
    world = World()
    world.started()
    limited = {"builder": agent("builder", banner("10:30am")), "adversary": agent("adversary", PANE_ACTIVE)}
    world.tick(limited, advance=1)
    acts = world.tick(limited, git("h1", files=DONE_FILE), advance=1)
    acts += world.tick(limited, git("h1"), advance=1)
    assert of_type(acts, "StopAgent", "builder") == []
    assert len(of_type(acts, "StopAgent", "adversary")) == 1
    acts = world.tick(limited, git("h1"), advance=40 * 60)
    assert len(of_type(acts, "StopAgent", "builder")) == 1


def test_host_lost_inside_a_window_is_restarted_warm_only_after_it():
    world = World()
    world.started()
    world.tick({"builder": agent("builder", banner("10:30am")), "adversary": agent("adversary", PANE_ACTIVE)}, advance=1)
    gone = {"builder": absent("builder"), "adversary": agent("adversary", PANE_ACTIVE)}
    assert of_type(world.tick(gone, advance=60), "StartAgent") == []
    starts = of_type(world.tick(gone, advance=40 * 60), "StartAgent", "builder")
    assert [(s.mode) for s in starts] == ["warm"]


def test_phase_removed_from_spec_is_reported_and_nothing_happens():
    world = World()
    world.started()
    world.spec = make_spec(phases=[{"id": "other", "plan": "o.md", "statusFile": "S.md"}])
    acts = world.tick(both(PANE_ACTIVE), advance=1)
    assert of_type(acts, "StartAgent") == of_type(acts, "StopAgent") == []
    assert "no longer in spec.phases" in world.status.message


# -- suspend / resume ---------------------------------------------------------------------------


def test_suspend_stops_and_resume_restarts_warm_with_state_kept():
    world = World()
    world.started()
    world.tick({"builder": agent("builder", banner("10:30am")), "adversary": agent("adversary", PANE_ACTIVE)}, advance=1)
    window = world.status.agents["builder"].limit
    # Two accounts: the builder's limit does not hold the adversary (that is tested apart).
    accounts = {"builder": {"account": "a"}, "adversary": {"account": "b"}}
    world.spec = make_spec(suspend=True, agents=accounts)
    acts = world.tick(both(PANE_ACTIVE), advance=1)
    assert {a.role for a in of_type(acts, "StopAgent")} == {"builder", "adversary"}
    assert world.status.phase == "Suspended"
    world.tick({"builder": absent("builder"), "adversary": absent("adversary")}, advance=1)
    assert world.status.agents["builder"].limit == window
    world.spec = make_spec(agents=accounts)
    acts = world.tick({"builder": absent("builder"), "adversary": absent("adversary")}, advance=1)
    assert [(s.role, s.mode) for s in of_type(acts, "StartAgent")] == [("adversary", "warm")]
    assert world.status.agents["builder"].state == "Limited"


# -- orchestrator -------------------------------------------------------------------------------


def test_orchestrator_woken_hourly_only_when_idle_and_retried_until_delivered():
    world = World(spec=make_spec(agents={"orchestrator": {"backend": "sim", "simScenario": "phases: {default: []}"}}))
    obs = {**both(PANE_ACTIVE), "orchestrator": agent("orchestrator", PANE_IDLE)}
    world.tick({"builder": absent("builder"), "adversary": absent("adversary"), "orchestrator": absent("orchestrator")})
    world.tick(obs, advance=120)
    assert of_type(world.tick(obs, advance=1800), "SendText", "orchestrator") == []
    busy = {**obs, "orchestrator": agent("orchestrator", PANE_ACTIVE)}
    assert of_type(world.tick(busy, advance=1900), "SendText", "orchestrator") == []
    wakes = of_type(world.tick(obs, advance=30), "SendText", "orchestrator")
    assert [w.purpose for w in wakes] == ["wake"]
    assert of_type(world.tick(obs, advance=30), "SendText", "orchestrator") == []


# -- conditions ---------------------------------------------------------------------------------


def test_condition_transition_time_moves_only_when_the_status_flips():
    world = World()
    world.started()
    world.tick(both(PANE_ACTIVE), advance=1)
    ready = world.status.condition("Ready")
    assert ready.status == "True"
    stamp = ready.last_transition_time
    world.tick(both(PANE_ACTIVE), advance=50)
    assert world.status.condition("Ready").last_transition_time == stamp


def test_every_action_is_recorded_with_rule_and_reason():
    world = World()
    world.started()
    acts = world.tick(both(PANE_IDLE, changed=world.now), git("h1", "claim(g): x"), advance=1)
    entry = world.status.history[-1]
    assert entry.kind == "ping" and entry.rule == "handoff.claim" and "claim commit" in entry.reason
    assert isinstance(acts[-1], SendText)
    assert all(isinstance(a, SendText | StartAgent | StopAgent | RestartAgent | RecreateHost)
               or type(a).__name__ == "EmitEvent" for a in acts)


def test_previous_phase_agent_working_again_lifts_its_window_before_the_stop():
    world = World()
    world.started()
    limited = {"builder": agent("builder", banner("10:30am")), "adversary": agent("adversary", PANE_ACTIVE)}
    world.tick(limited, advance=1)
    world.tick(limited, git("h1", files=DONE_FILE), advance=1)
    acts = world.tick(both(PANE_ACTIVE, phase=0), git("h1"), advance=1)
    kinds_in_order = [getattr(a, "kind", type(a).__name__) for a in acts if a.role == "builder"]
    assert kinds_in_order == ["limit-lifted", "StopAgent"]


def test_a_different_problem_starts_its_own_ladder():
    world = World()
    world.started()
    world.tick({"builder": agent("builder", PANE_FATAL), "adversary": agent("adversary", PANE_ACTIVE)}, advance=120)
    assert world.status.agents["builder"].heal.tier == 3
    stuck = {"builder": agent("builder", PANE_IDLE, changed=world.now), "adversary": agent("adversary", PANE_ACTIVE)}
    world.tick(stuck, advance=90)  # past the start grace: the idle clock starts
    acts = world.tick(stuck, advance=400)
    assert [a.purpose for a in of_type(acts, "SendText", "builder")] == ["nudge"]


def test_a_phase_stop_clears_the_start_guard_so_the_next_phase_starts_at_once():
    world = World()
    world.started()
    world.tick({"builder": agent("builder", "", alive=False), "adversary": agent("adversary", PANE_ACTIVE)}, advance=120)
    assert world.status.agents["builder"].start_requested_at is not None  # warm restart issued
    world.tick(both(PANE_IDLE), git("h1", files=DONE_FILE), advance=1)
    acts = world.tick({"builder": absent("builder"), "adversary": absent("adversary")}, git("h1"), advance=1)
    assert {s.role for s in of_type(acts, "StartAgent")} == {"builder", "adversary"}


def test_done_waits_for_the_heavy_tick_when_done_on_push_is_off():
    world = World(spec=make_spec(timing={"doneOnPush": False, "heavyInterval": "300s"}))
    world.started()  # the first git observation is a heavy check
    world.tick(both(PANE_ACTIVE), git("h1", files=DONE_FILE), advance=10)
    assert world.status.current.index == 0  # pushed, but the heavy tick is not due
    world.tick(both(PANE_ACTIVE), git("h1", files=DONE_FILE), advance=290)
    assert world.status.current.index == 1


def test_done_is_seen_at_once_by_default():
    world = World()
    world.started()
    world.tick(both(PANE_ACTIVE), git("h1", files=DONE_FILE), advance=1)
    assert world.status.current.index == 1


def _with_hooks(pane, *events):
    from dataclasses import replace
    return replace(agent("builder", pane), hook_events=tuple(events))


def test_stop_failure_hook_with_a_limit_error_arms_a_flat_window():
    from loopphase.core.observations import HookEvent
    world = World()
    world.started()
    event = HookEvent("StopFailure", time=world.now + timedelta(seconds=2), error_type="rate_limit")
    acts = world.tick({"builder": _with_hooks(PANE_IDLE, event), "adversary": agent("adversary", PANE_ACTIVE)}, advance=5)
    window = world.status.agents["builder"].limit
    assert window is not None and not window.parsed and window.rule == "hook.stop-failure"
    assert any(getattr(a, "kind", "") == "limit-armed" for a in acts)


@pytest.mark.parametrize("error_type", ["server_error", "overloaded", None])
def test_stop_failure_hook_without_a_limit_error_is_not_a_window(error_type):
    from loopphase.core.observations import HookEvent
    world = World()
    world.started()
    event = HookEvent("StopFailure", time=world.now + timedelta(seconds=2), error_type=error_type)
    world.tick({"builder": _with_hooks(PANE_IDLE, event), "adversary": agent("adversary", PANE_ACTIVE)}, advance=5)
    assert world.status.agents["builder"].limit is None


def test_stop_failure_older_than_visible_work_or_followed_by_a_clean_stop_is_ignored():
    from loopphase.core.observations import HookEvent
    world = World()
    world.started()  # builder seen active at T0+1s
    old = HookEvent("StopFailure", time=T0, error_type="rate_limit")
    world.tick({"builder": _with_hooks(PANE_IDLE, old), "adversary": agent("adversary", PANE_ACTIVE)}, advance=5)
    assert world.status.agents["builder"].limit is None
    fresh = HookEvent("StopFailure", time=world.now, error_type="rate_limit")
    clean = HookEvent("Stop", time=world.now + timedelta(seconds=1))
    world.tick({"builder": _with_hooks(PANE_IDLE, fresh, clean), "adversary": agent("adversary", PANE_ACTIVE)}, advance=5)
    assert world.status.agents["builder"].limit is None


def test_next_tick_wakes_at_a_window_end_rather_than_a_tick_later():
    from loopphase.controller.tick import next_tick_delay
    world = World(spec=make_spec(timing={"signalInterval": "300s"}))
    world.started()
    assert next_tick_delay(world.spec, world.status, world.now) == 300
    world.tick({"builder": agent("builder", banner("10:00am").replace("10:00am", "10:01am")),
                "adversary": agent("adversary", PANE_ACTIVE)}, advance=1)
    until = world.status.agents["builder"].limit.until
    delay = next_tick_delay(world.spec, world.status, world.now)
    assert delay == pytest.approx((until - world.now).total_seconds() + 0.05)
    assert delay < 300


def test_a_steadily_working_agent_changes_nothing_in_status():
    """Status is patched only when something changed: ticks of steady work write nothing."""
    world = World()
    world.started()
    world.tick(both(PANE_ACTIVE, changed=world.now), git("h0"), advance=5)
    before = world.status
    for step in range(1, 4):
        world.tick(both(PANE_ACTIVE, changed=world.now + timedelta(seconds=step)), git("h0"), advance=5)
        assert world.status == before


def test_steadily_idle_agent_changes_nothing_in_status_until_it_stalls():
    world = World()
    world.started()
    world.tick(both(PANE_IDLE, changed=world.now), git("h0"), advance=2)
    before = world.status
    world.tick(both(PANE_IDLE, changed=world.now - timedelta(seconds=2)), git("h0"), advance=60)
    assert world.status == before


def test_a_stale_screen_of_the_replaced_process_does_not_count_as_started():
    world = World()
    world.now += timedelta(seconds=100)  # processes below started at T0, before the request
    world.tick({"builder": absent("builder"), "adversary": absent("adversary")}, git("h0"))
    # Process start times before our start request: the old process's screen.
    acts = world.tick(both(PANE_IDLE), git("h1", "claim(g): x"), advance=2)
    assert of_type(acts, "SendText") == []
    assert world.status.agents["adversary"].state == "Starting"


def test_reconcile_never_mutates_the_status_it_was_given():
    """copy_for_update shares history entries: reconcile must never edit the caller's status."""
    world = World()
    world.started()
    world.tick({"builder": agent("builder", banner("10:05am")), "adversary": agent("adversary", PANE_ACTIVE)},
               git("h1", "claim(g): x", files={"machine-docs/ADVERSARY-INBOX.md": "n"}), advance=1)
    snapshot = world.status.model_dump()
    for obs, step in (
        ({"builder": agent("builder", banner("10:05am")), "adversary": agent("adversary", PANE_IDLE)}, 600),
        ({"builder": agent("builder", PANE_FATAL), "adversary": agent("adversary", "", alive=False)}, 600),
    ):
        reconcile(world.spec, world.status, Observations(obs, git("h2", "review(g): PASS", files=DONE_FILE)),
                  world.now + timedelta(seconds=step))
        assert world.status.model_dump() == snapshot


def test_settle_never_mutates_the_status_it_was_given():
    world = World()
    world.started()
    obs = {"builder": agent("builder", banner("10:05am")), "adversary": agent("adversary", PANE_ACTIVE)}
    world.tick(obs, advance=1)
    acts = world.tick(obs, advance=400)
    probe = of_type(acts, "SendText", "builder")[0]
    snapshot = world.status.model_dump()
    settled = settle(world.spec, world.status, [(probe, False, "busy")], world.now)
    assert world.status.model_dump() == snapshot
    assert settled.agents["builder"].limit.until == world.now  # retried next tick


# -- starts refused by the platform ---------------------------------------------------------------

REFUSAL = ("start builder: HTTP 403 Forbidden: pods \"demo-builder\" is forbidden: cannot set "
           "blockOwnerDeletion if an ownerReference refers to a resource you can't set "
           "finalizers on: , <nil>")


def test_a_refused_start_is_degraded_start_refused_until_the_host_appears():
    """Fault 3 (issue 14): a start the API server refused showed only as an Event; the
    LoopPhase sat in Pending 'starting agents'."""
    world = World()
    acts = world.tick({"builder": absent("builder"), "adversary": absent("adversary")})
    start = of_type(acts, "StartAgent", "builder")[0]
    world.status = settle(world.spec, world.status, [(start, False, REFUSAL)], world.now)
    degraded = world.status.condition("Degraded")
    assert (degraded.status, degraded.reason) == ("True", "StartRefused")
    assert "cannot set blockOwnerDeletion" in degraded.message and degraded.message.startswith(
        "builder: start refused: start builder: HTTP 403")
    assert world.status.phase == "Degraded"
    # the next ticks (start pending, not retried yet) keep saying so, unchanged
    world.tick({"builder": absent("builder"), "adversary": absent("adversary")}, advance=10)
    again = world.status.condition("Degraded")
    assert (again.status, again.reason, again.last_transition_time) == (
        "True", "StartRefused", degraded.last_transition_time)
    assert world.status.agents["builder"].reason.startswith("start refused: ")
    # once the host exists, the refusal is history
    world.tick(both(PANE_ACTIVE), advance=1)
    assert world.status.agents["builder"].start_error == ""
    assert world.status.condition("Degraded").status == "False"

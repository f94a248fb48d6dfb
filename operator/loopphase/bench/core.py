"""Core throughput: ``reconcile`` calls per second on a realistic status.

The status is built by driving ``reconcile`` itself (so it is a status the core really
produces): 3 phases, builder + adversary started, the builder in an armed usage-limit window,
the adversary working (so pings queue up), pending pings, and a full history
(``HISTORY_LIMIT`` entries). Two workloads are timed with ``time.perf_counter``:

* ``changing``: every call sees a new claim commit and changed panes, starting from the same
  input status (reconcile never mutates its input), so every call does the same real work and
  emits actions.
* ``idempotent``: the world is unchanged since the last tick; the call must yield no actions
  and an equal status (checked before timing).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from loopphase.api.spec import LoopPhaseSpec
from loopphase.api.status import HISTORY_LIMIT, HistoryEntry, LoopPhaseStatus, PendingPing
from loopphase.core.observations import AgentObservation, Commit, GitObservation, Observations
from loopphase.core.reconcile import reconcile

T0 = datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC)
PANE_ACTIVE = "Reading files\n\n⠋ Working… (12s · esc to interrupt)\n> "
PANE_BANNER = "Working on gate 2\n\n5-hour limit reached ∙ resets 12:30pm\n> "


def make_spec() -> LoopPhaseSpec:
    return LoopPhaseSpec.model_validate({
        "repo": {"url": "https://example.invalid/repo.git"},
        "phases": [
            {"id": f"p{i}", "plan": f"plans/p{i}.md", "statusFile": f"STATUS-p{i}.md"}
            for i in (1, 2, 3)
        ],
        "timeZone": "UTC",
        # Two subscriptions: with one, the builder's limit would hold the adversary's pings
        # (an account-wide hold) and the changing call would relay nothing.
        "agents": {"builder": {"account": "team-a"}, "adversary": {"account": "team-b"}},
    })


def _agent(role: str, pane: str, changed: datetime) -> AgentObservation:
    return AgentObservation(role=role, present=True, alive=True, pid=4242, started_at=T0,
                            pane=pane, phase_index=0, last_change_at=changed)


def _git(head: str, *subjects: str) -> GitObservation:
    commits = tuple(Commit(f"{head}{i:02d}", s) for i, s in enumerate(subjects))
    files = {"machine-docs/STATUS-p1.md": "# Status p1\n", "machine-docs/ADVERSARY-INBOX.md": None,
             "machine-docs/BUILDER-INBOX.md": None}
    return GitObservation(reachable=True, head=head, commits=commits, files=files)


def realistic_status(spec: LoopPhaseSpec) -> tuple[LoopPhaseStatus, datetime]:
    """Drive reconcile to a loaded status: armed window, pending pings, full history."""
    status = LoopPhaseStatus()
    now = T0
    absent = {r: AgentObservation(role=r, present=False) for r in ("builder", "adversary")}
    _, status = reconcile(spec, status, Observations(absent), now)
    now += timedelta(seconds=1)
    both = {r: _agent(r, PANE_ACTIVE, now) for r in ("builder", "adversary")}
    _, status = reconcile(spec, status, Observations(both, _git("base")), now)
    now += timedelta(seconds=90)
    obs = {"builder": _agent("builder", PANE_BANNER, now), "adversary": _agent("adversary", PANE_ACTIVE, now)}
    _, status = reconcile(spec, status, Observations(obs, _git("c1", "claim(g1): widgets")), now)
    status = status.model_copy(deep=True)
    # Pings that cannot be delivered yet (builder limited, adversary busy) and a full history.
    status.handoff.pending_pings = [
        PendingPing(role="adversary", kind="claim", reason="claim commit c1: claim(g1)", since=now),
        PendingPing(role="builder", kind="review", reason="review commit r0: review(g0): PASS", since=now),
        PendingPing(role="adversary", kind="inbox", reason="inbox changed", since=now),
    ]
    while len(status.history) < HISTORY_LIMIT:
        status.history_seq += 1
        status.history.append(HistoryEntry(seq=status.history_seq, time=now, kind="ping",
                                           role="adversary", rule="handoff.claim",
                                           reason=f"filler history entry {status.history_seq}"))
    return status, now


def _time_calls(fn: Callable[[], object], seconds: float, min_calls: int) -> tuple[int, float]:
    fn()  # warm-up
    calls = 0
    started = time.perf_counter()
    elapsed = 0.0
    while elapsed < seconds or calls < min_calls:
        fn()
        calls += 1
        elapsed = time.perf_counter() - started
    return calls, elapsed


def run(seconds: float = 2.0, min_calls: int = 50) -> dict[str, Any]:
    spec = make_spec()
    status, now = realistic_status(spec)
    builder = status.agents.get("builder")
    armed = builder is not None and builder.limit is not None
    later = now + timedelta(seconds=1)

    changing_obs = Observations(
        {"builder": _agent("builder", PANE_BANNER + " ", later),
         "adversary": _agent("adversary", PANE_ACTIVE.replace("12s", "13s"), later)},
        _git("c2", "claim(g2): gadgets", "docs: notes"),
    )
    actions, _ = reconcile(spec, status, changing_obs, later)
    changing_actions = len(actions)

    steady_obs = Observations(
        {"builder": _agent("builder", PANE_BANNER, now), "adversary": _agent("adversary", PANE_ACTIVE, now)},
        GitObservation(reachable=True, head="c100", commits=(), files=_git("c1").files),
    )
    _, settled = reconcile(spec, status, steady_obs, later)
    _, settled = reconcile(spec, settled, steady_obs, later)
    idle_actions, again = reconcile(spec, settled, steady_obs, later)
    idempotent_ok = idle_actions == [] and again == settled

    results: dict[str, Any] = {
        "status_shape": {
            "phases": len(spec.phases), "agents": len(status.agents),
            "history": len(status.history), "pending_pings": len(status.handoff.pending_pings),
            "window_armed": armed, "status_json_bytes": len(status.model_dump_json()),
        },
    }
    for name, fn, extra in (
        ("changing", lambda: reconcile(spec, status, changing_obs, later), {"actions_per_call": changing_actions}),
        ("idempotent", lambda: reconcile(spec, settled, steady_obs, later),
         {"actions_per_call": len(idle_actions), "no_actions_and_equal_status": idempotent_ok}),
    ):
        calls, elapsed = _time_calls(fn, seconds, min_calls)
        results[name] = {"calls": calls, "seconds": round(elapsed, 4),
                         "calls_per_s": round(calls / elapsed, 1),
                         "us_per_call": round(elapsed / calls * 1e6, 1), **extra}
    return results

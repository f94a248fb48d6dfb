"""Webhook hints on the git watcher: a slow poll, an immediate observe after a hint, the source
of each observation, and one fetch per push however many LoopPhases share the remote."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from pathlib import Path

from gitwatch_helpers import FakeClock, Remote, count_git_calls
from loopphase.git import WatcherRegistry
from loopphase.git.source import WatchedRemote

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_slow_poll_reuses_the_head_until_a_hint_then_reads_the_remote(
    remote: Remote, tmp_path: Path, clock: FakeClock
) -> None:
    reg = WatcherRegistry(tmp_path / "cache", min_interval=1.0, clock=clock)
    watcher = reg.get(remote.url, "main")
    calls = count_git_calls(watcher)
    base = reg.observe(remote.url, "main", None, [], max_age=60)
    assert base.source == "poll" and calls["ls-remote"] == 1

    claim = remote.commit("claim: x")
    clock.advance(30)  # inside the 60 s safety-net poll: the push is not seen yet
    assert reg.observe(remote.url, "main", base.head, [], max_age=60).head == base.head
    assert calls["ls-remote"] == 1

    watcher.hint(T0, claim)
    obs = reg.observe(remote.url, "main", base.head, [], max_age=60)
    assert obs.head == claim and obs.source == "webhook" and obs.webhook_at == T0
    assert [c.subject for c in obs.commits] == ["claim: x"]
    # after a webhook the head is read by fetching it: one request, not ls-remote + fetch
    assert calls["ls-remote"] == 1 and calls["fetch"] == 2
    assert watcher.reads_by == {"poll": 1, "webhook": 1}

    # a dropped webhook: the push shows up at the next safety-net poll, as source "poll"
    review = remote.commit("review: PASS")
    clock.advance(59)
    assert reg.observe(remote.url, "main", claim, [], max_age=60).head == claim
    clock.advance(1)
    late = reg.observe(remote.url, "main", claim, [], max_age=60)
    assert late.head == review and late.source == "poll"


def test_a_hint_during_a_running_ls_remote_is_not_lost(
    remote: Remote, tmp_path: Path, clock: FakeClock
) -> None:
    """ls-remote answered with the old head, the push and its webhook landed meanwhile: that
    answer must not be memoised for the slow poll's whole interval."""
    reg = WatcherRegistry(tmp_path / "cache", clock=clock)
    watcher = reg.get(remote.url, "main")
    base = watcher.observe(None, [], max_age=60)
    clock.advance(61)
    real_check = watcher.runner.check
    pushed: list[str] = []

    def ls_remote_then_push(args, **kwargs):  # type: ignore[no-untyped-def]
        result = real_check(args, **kwargs)
        if args[0] == "ls-remote" and not pushed:
            pushed.append(remote.commit("claim: racing"))
            watcher.hint(T0, pushed[0])
        return result

    watcher.runner.check = ls_remote_then_push  # type: ignore[method-assign]
    stale = watcher.observe(base.head, [], max_age=60)
    assert stale.head == base.head  # the ls-remote predates the push
    fresh = watcher.observe(base.head, [], max_age=60)
    assert fresh.head == pushed[0] and fresh.source == "webhook"


def test_hint_never_waits_for_a_busy_watcher(remote: Remote, tmp_path: Path) -> None:
    reg = WatcherRegistry(tmp_path / "cache")
    watcher = reg.get(remote.url, "main")
    done = threading.Event()
    with watcher.lock:  # git is running in another thread
        threading.Thread(target=lambda: (watcher.hint(T0), done.set()), daemon=True).start()
        assert done.wait(timeout=5), "hint() blocked on the watcher's git lock"
    assert watcher.hints == 1


async def test_many_loopphases_on_one_remote_cost_one_fetch_per_push(
    remote: Remote, tmp_path: Path
) -> None:
    """Ten LoopPhases on one repo and branch, webhooks configured: per push one fetch in all
    (no ls-remote), and every LoopPhase sees the push as a webhook observation."""
    reg = WatcherRegistry(tmp_path / "cache")
    sources = [WatchedRemote(reg, remote.url, "main", webhooks=True, poll_interval=60)
               for _ in range(10)]
    watcher = sources[0].watcher()
    assert all(s.watcher() is watcher for s in sources)
    calls = count_git_calls(watcher)
    cursors = [o.head for o in await asyncio.gather(*(s.observe(None, []) for s in sources))]
    assert calls["ls-remote"] == 1 and calls["fetch"] == 1
    for round_ in range(3):
        sha = remote.commit(f"claim: round {round_}")
        watcher.hint(datetime.now(UTC), sha)  # what every subscriber's callback does
        watcher.hint(datetime.now(UTC), sha)  # ... once per LoopPhase woken
        observed = await asyncio.gather(*(s.observe(c, []) for s, c in zip(sources, cursors, strict=True)))
        assert {o.head for o in observed} == {sha}
        assert {o.source for o in observed} == {"webhook"}
        assert all(o.webhooks_expected for o in observed)
        cursors = [sha] * len(sources)
    assert calls["ls-remote"] == 1 and calls["fetch"] == 1 + 3


def test_a_webhook_for_a_deleted_branch_reports_it_gone(
    remote: Remote, tmp_path: Path, clock: FakeClock
) -> None:
    reg = WatcherRegistry(tmp_path / "cache", clock=clock)
    watcher = reg.get(remote.url, "main")
    base = watcher.observe(None, [], max_age=60)
    assert base.reachable
    from gitwatch_helpers import git

    git(remote.bare, "update-ref", "-d", "refs/heads/main")
    watcher.hint(T0)
    gone = watcher.observe(base.head, [], max_age=60)
    assert not gone.reachable and "not found" in (gone.error or "")
    assert watcher.backoff.failures == 0  # "no such branch" is a condition, not a failure

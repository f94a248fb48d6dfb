"""WatcherRegistry: one watcher, one ls-remote and one fetch per remote, however many callers."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from gitwatch_helpers import FakeClock, Remote, count_git_calls
from loopphase.core.observations import GitObservation
from loopphase.git import RemoteWatcher, WatcherRegistry, observe_async


def test_shared_watcher_one_ls_remote_within_min_interval(
    remote: Remote, tmp_path: Path, clock: FakeClock
) -> None:
    reg = WatcherRegistry(tmp_path / "cache", min_interval=1.0, clock=clock)
    phase_a = reg.get(remote.url, "main")
    phase_b = reg.get(remote.url, "main")
    assert phase_a is phase_b and len(reg) == 1
    calls = count_git_calls(phase_a)
    a = reg.observe(remote.url, "main", None, ["README.md"])
    b = reg.observe(remote.url, "main", None, ["STATUS.md"])
    assert a.head == b.head == remote.sha()
    assert calls["ls-remote"] == 1 and calls["fetch"] == 1

    clock.advance(0.5)
    reg.observe(remote.url, "main", a.head, [])
    assert calls["ls-remote"] == 1  # still inside min_interval
    clock.advance(0.5)
    remote.commit("claim: x")
    obs = reg.observe(remote.url, "main", a.head, [])
    assert calls["ls-remote"] == 2
    assert [c.subject for c in obs.commits] == ["claim: x"]


def test_distinct_keys_get_distinct_watchers(remote: Remote, tmp_path: Path) -> None:
    reg = WatcherRegistry(tmp_path / "cache")
    main = reg.get(remote.url, "main")
    assert reg.get(remote.url, "dev") is not main
    assert reg.get(remote.url, "main", env={"GIT_ASKPASS": "/x"}) is not main
    assert reg.get(remote.url, "main", env={"GIT_ASKPASS": "/x"}) is reg.get(
        remote.url, "main", env={"GIT_ASKPASS": "/x"}
    )
    assert main.cache.path != reg.get(remote.url, "dev").cache.path


class SpyLock:
    """A real lock that reports when a second thread tries to take it."""

    def __init__(self, cond: threading.Condition) -> None:
        self._lock = threading.Lock()
        self._cond = cond
        self.attempts = 0

    def __enter__(self) -> SpyLock:
        with self._cond:
            self.attempts += 1
            self._cond.notify_all()
        self._lock.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


def test_lock_serialises_concurrent_fetches(
    remote: Remote, tmp_path: Path, clock: FakeClock
) -> None:
    """Thread 1 holds the fetch until thread 2 is either queued on the lock (correct) or
    inside fetch too (no lock: overlap). Fails if the watcher stops using its lock."""
    reg = WatcherRegistry(tmp_path / "cache", min_interval=1.0, clock=clock)
    w = reg.get(remote.url, "main")
    calls = count_git_calls(w)
    cond = threading.Condition()
    spy = SpyLock(cond)
    w.lock = spy  # type: ignore[assignment]
    state = {"entries": 0, "active": 0, "max_active": 0, "second_seen": None}
    first_in_fetch = threading.Event()
    real_fetch = w.cache.fetch

    def instrumented_fetch() -> str:
        with cond:
            state["entries"] += 1
            state["active"] += 1
            state["max_active"] = max(state["max_active"], state["active"])
            entry = state["entries"]
            cond.notify_all()
        try:
            if entry == 1:
                first_in_fetch.set()
                with cond:  # wait (bounded) for the second caller to show up somewhere
                    state["second_seen"] = cond.wait_for(
                        lambda: spy.attempts >= 2 or state["entries"] >= 2, timeout=10
                    )
            return real_fetch()
        finally:
            with cond:
                state["active"] -= 1

    w.cache.fetch = instrumented_fetch  # type: ignore[method-assign]
    results: list[GitObservation] = []

    def run() -> None:
        results.append(reg.observe(remote.url, "main", None, ["README.md"]))

    t1 = threading.Thread(target=run)
    t1.start()
    assert first_in_fetch.wait(10)
    t2 = threading.Thread(target=run)
    t2.start()
    t1.join(20)
    t2.join(20)
    assert state["second_seen"] is True
    assert state["max_active"] == 1, "two fetches of one remote overlapped"
    assert state["entries"] == 1 and calls["fetch"] == 1  # the second caller reused the cache
    assert calls["ls-remote"] == 1
    assert len(results) == 2 and results[0] == results[1]
    assert results[0].files == {"README.md": "hello\n"}


async def test_observe_async_runs_in_threads(remote: Remote, tmp_path: Path) -> None:
    reg = WatcherRegistry(tmp_path / "cache", min_interval=30.0)
    w: RemoteWatcher = reg.get(remote.url, "main")
    calls = count_git_calls(w)
    many = await asyncio.gather(
        *(reg.observe_async(remote.url, "main", None, ["README.md"]) for _ in range(5)),
        observe_async(w, None, ["README.md"]),
    )
    assert {o.head for o in many} == {remote.sha()}
    assert all(o.reachable and o.files == {"README.md": "hello\n"} for o in many)
    assert calls["ls-remote"] == 1 and calls["fetch"] == 1


def test_independent_watchers_share_a_cache_dir_safely(remote: Remote, tmp_path: Path) -> None:
    """Two registries (e.g. two processes) on one cache dir: creation never half-initialises."""
    watchers = [RemoteWatcher(remote.url, "main", tmp_path / "cache") for _ in range(4)]
    barrier = threading.Barrier(len(watchers))
    results: list[GitObservation] = []

    def run(w: RemoteWatcher) -> None:
        barrier.wait(10)
        results.append(w.observe(None, ["README.md"]))

    threads = [threading.Thread(target=run, args=(w,)) for w in watchers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert len(results) == 4
    assert all(o.reachable and o.files == {"README.md": "hello\n"} for o in results), results


def test_memoised_answer_equals_observe_and_only_when_nothing_can_be_new(
    remote: Remote, tmp_path: Path, clock: FakeClock
) -> None:
    """The async path's inline answer (no thread, no git) is exactly what observe would say, and
    is refused whenever git would have to run or the answer could be stale."""
    remote.commit("docs", files={"STATUS.md": "working\n"})
    watcher = RemoteWatcher(remote.url, "main", tmp_path / "cache", clock=clock, min_interval=1.0)
    calls = count_git_calls(watcher)
    first = watcher.observe(None, ["STATUS.md"])
    head = first.head
    assert watcher.observe_memoised(None, ["STATUS.md"]) is None  # cursor is not the head
    inline = watcher.observe_memoised(head, ["STATUS.md"])
    assert inline == watcher.observe(head, ["STATUS.md"])
    assert inline is not None and inline.files == {"STATUS.md": "working\n"}
    assert watcher.observe_memoised(head, ["STATUS.md", "PLAN.md"]) is None  # PLAN.md unread
    with watcher.lock:  # git is running on another thread: never wait for it
        assert watcher.observe_memoised(head, ["STATUS.md"]) is None
    clock.advance(1.0)
    assert watcher.observe_memoised(head, ["STATUS.md"]) is None  # the ls-remote is due again
    before = dict(calls)
    remote.commit("claim: x")
    obs = asyncio.run(observe_async(watcher, head, ["STATUS.md"]))
    assert [c.subject for c in obs.commits] == ["claim: x"]
    assert calls["ls-remote"] == before.get("ls-remote", 0) + 1


def test_memoised_answer_respects_the_backoff(remote: Remote, tmp_path: Path, clock: FakeClock) -> None:
    watcher = RemoteWatcher(remote.url, "main", tmp_path / "cache", clock=clock, min_interval=1.0)
    head = watcher.observe(None, []).head
    assert watcher.observe_memoised(head, []) is not None
    watcher.backoff.failure("remote said no")
    assert watcher.backoff.blocked()
    assert watcher.observe_memoised(head, []) is None

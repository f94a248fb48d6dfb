"""Share one RemoteWatcher per (url, branch) across every LoopPhase, plus an async wrapper."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from loopphase.core.observations import GitObservation
from loopphase.git.watcher import RemoteWatcher


def _env_key(env: Mapping[str, str] | None) -> str:
    """A fingerprint of the credentials env: LoopPhases never borrow each other's secrets."""
    if not env:
        return ""
    blob = "\0".join(f"{k}={v}" for k, v in sorted(env.items()))
    return hashlib.sha256(blob.encode()).hexdigest()


class WatcherRegistry:
    """Creates watchers lazily and hands the same one to every caller on the same remote.

    Watchers get ``min_interval`` (seconds): within it, repeated observes reuse the last
    ``ls-remote``, so N LoopPhases on one remote in one tick cost one ``ls-remote``. Each
    watcher's own lock makes concurrent observes of one remote do one fetch.
    """

    def __init__(
        self,
        cache_dir: Path,
        *,
        timeout: float = 20.0,
        min_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        max_commits: int = 500,
    ) -> None:
        self.cache_dir = Path(cache_dir)
        self.timeout = timeout
        self.min_interval = min_interval
        self.clock = clock
        self.max_commits = max_commits
        self._watchers: dict[tuple[str, str, str], RemoteWatcher] = {}
        self._lock = threading.Lock()

    def get(self, url: str, branch: str, env: Mapping[str, str] | None = None) -> RemoteWatcher:
        """The shared watcher for (url, branch) (and credentials env, when one is given)."""
        key = (url, branch, _env_key(env))
        with self._lock:
            watcher = self._watchers.get(key)
            if watcher is None:
                watcher = RemoteWatcher(
                    url,
                    branch,
                    self.cache_dir,
                    timeout=self.timeout,
                    env=env,
                    clock=self.clock,
                    min_interval=self.min_interval,
                    max_commits=self.max_commits,
                )
                self._watchers[key] = watcher
            return watcher

    def observe(
        self,
        url: str,
        branch: str,
        cursor: str | None,
        paths: Sequence[str],
        env: Mapping[str, str] | None = None,
        max_age: float | None = None,
    ) -> GitObservation:
        return self.get(url, branch, env).observe(cursor, paths, max_age)

    async def observe_async(
        self,
        url: str,
        branch: str,
        cursor: str | None,
        paths: Sequence[str],
        env: Mapping[str, str] | None = None,
        max_age: float | None = None,
    ) -> GitObservation:
        return await observe_async(self.get(url, branch, env), cursor, paths, max_age)

    def watchers(self) -> list[RemoteWatcher]:
        with self._lock:
            return list(self._watchers.values())

    def __len__(self) -> int:
        return len(self._watchers)


async def observe_async(
    watcher: RemoteWatcher, cursor: str | None, paths: Sequence[str],
    max_age: float | None = None,
) -> GitObservation:
    """``watcher.observe`` in a worker thread, so the event loop never blocks on git; answered
    inline when the watcher can tell from memory (nothing new since the cursor)."""
    known = watcher.observe_memoised(cursor, paths, max_age)
    if known is not None:
        return known
    return await asyncio.to_thread(watcher.observe, cursor, list(paths), max_age)

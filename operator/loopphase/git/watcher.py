"""RemoteWatcher: what the pushed branch of one remote looks like, cheaply, every tick."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from loopphase.core.observations import Commit, GitObservation
from loopphase.git.backoff import Backoff
from loopphase.git.cache import CacheRepo, TooLarge, cache_dir_name
from loopphase.git.errors import GitRemoteError
from loopphase.git.redact import redact_url
from loopphase.git.runner import GitRunner

log = logging.getLogger(__name__)

MAX_COMMITS = 500
_KEPT_HEADS = 4  # heads whose file contents stay cached


class RemoteWatcher:
    """One per (url, branch). Thread-safe: one lock serialises every network/cache operation.

    ``head()`` is an ``ls-remote``; ``observe()`` fetches into a bare cache only when the head
    is not in it yet, lists commits since a cursor, detects force-pushes and reads files at the
    pushed head. Failures back off exponentially (``backoff_base`` doubling to ``backoff_max``)
    on the injected ``clock``; ``min_interval`` > 0 memoises the last ``ls-remote`` that long.
    """

    def __init__(
        self,
        url: str,
        branch: str,
        cache_dir: Path,
        *,
        timeout: float = 20.0,
        env: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        min_interval: float = 0.0,
        max_commits: int = MAX_COMMITS,
        backoff_base: float = 1.0,
        backoff_max: float = 300.0,
    ) -> None:
        if not url or url.startswith("-") or any(ch.isspace() for ch in url):
            raise ValueError("git url must be non-empty, without spaces, not starting with '-'")
        if not branch or branch.startswith("-") or ".." in branch:
            raise ValueError(f"invalid branch name {branch!r}")
        self.url = url
        self.branch = branch
        self.clock = clock
        self.min_interval = min_interval
        self.max_commits = max_commits
        self.runner = GitRunner(url, timeout=timeout, env=env)
        self.cache = CacheRepo(self.runner, Path(cache_dir) / cache_dir_name(url, branch), branch)
        self.backoff = Backoff(base=backoff_base, maximum=backoff_max, clock=clock)
        self.lock = threading.Lock()
        self.ls_remotes = 0
        self.last_truncated: int | None = None  # total commit count when the last list was capped
        self._memo: tuple[float, str | None] | None = None
        self._files: dict[str, dict[str, str | TooLarge | None]] = {}

    def __repr__(self) -> str:
        return f"RemoteWatcher({redact_url(self.url)!r}, {self.branch!r})"

    @property
    def fetches(self) -> int:
        return self.cache.fetches

    # -- head ---------------------------------------------------------------------------------

    def head(self) -> str:
        """The remote branch head via ``ls-remote``; raises GitRemoteError (redacted)."""
        with self.lock:
            if self.backoff.blocked():
                raise GitRemoteError(self.backoff.message())
            try:
                sha = self._remote_head()
            except GitRemoteError as exc:
                self._failed(str(exc))
                raise
            self.backoff.success()
            if sha is None:
                raise GitRemoteError(self._no_branch())
            return sha

    def _remote_head(self) -> str | None:
        """ls-remote (memoised for ``min_interval``); None when the branch does not exist."""
        now = self.clock()
        if (
            self._memo is not None
            and self.min_interval > 0
            and now - self._memo[0] < self.min_interval
        ):
            return self._memo[1]
        self.ls_remotes += 1
        ref = f"refs/heads/{self.branch}"
        out = self.runner.check(["ls-remote", self.url, ref]).text
        sha: str | None = None
        for line in out.splitlines():
            parts = line.split("\t")
            if len(parts) == 2 and parts[1] == ref:
                sha = parts[0].strip()
        self._memo = (now, sha)
        return sha

    def _no_branch(self) -> str:
        return f"branch {self.branch!r} not found on {redact_url(self.url)}"

    def _failed(self, error: str) -> None:
        self._memo = None
        self.backoff.failure(error)
        log.warning(
            "git remote %s: %s (failure %d, next try in %.0fs)",
            redact_url(self.url),
            error,
            self.backoff.failures,
            self.backoff.delay,
        )

    # -- observe ------------------------------------------------------------------------------

    def observe(self, cursor: str | None, paths: Sequence[str]) -> GitObservation:
        """The pushed branch since ``cursor``. Never raises for remote trouble: it reports it."""
        with self.lock:
            if self.backoff.blocked():
                return GitObservation(reachable=False, error=self.backoff.message())
            try:
                obs = self._observe(cursor, list(paths))
            except GitRemoteError as exc:
                self._failed(str(exc))
                return GitObservation(reachable=False, error=str(exc))
            self.backoff.success()  # the remote answered (even "no such branch")
            return obs

    def observe_memoised(self, cursor: str | None, paths: Sequence[str]) -> GitObservation | None:
        """The answer ``observe`` would give without running git, or None when git is needed.

        Only while the memoised ``ls-remote`` is fresh, the head is the caller's cursor and every
        path was read at it; never waits for the lock (a busy watcher means git is running).
        Lets the async callers skip the worker-thread hop on the usual "nothing new" tick.
        """
        if not self.lock.acquire(blocking=False):
            return None
        try:
            memo = self._memo
            if (
                memo is None
                or self.min_interval <= 0
                or self.clock() - memo[0] >= self.min_interval
                or memo[1] is None
                or memo[1] != cursor
                or self.backoff.blocked()
            ):
                return None
            cached = self._files.get(memo[1], {})
            if not all(p in cached for p in paths):
                return None
            self.backoff.success()
            return GitObservation(reachable=True, head=memo[1], **_file_fields(cached, paths))
        finally:
            self.lock.release()

    def _observe(self, cursor: str | None, paths: list[str]) -> GitObservation:
        head = self._remote_head()
        if head is None:
            # Reachable but no such branch (e.g. nothing pushed yet): a condition, not a failure.
            return GitObservation(reachable=False, error=self._no_branch())
        cached = self._files.get(head, {})
        if head == cursor and all(p in cached for p in paths):
            return GitObservation(reachable=True, head=head, **_file_fields(cached, paths))
        if not self.cache.has_commit(head):
            fetched = self.cache.fetch()
            if not self.cache.has_commit(head):  # moved again (rewritten) since ls-remote
                log.info("remote head moved during fetch: %s -> %s", head, fetched)
                head = fetched
                self._memo = (self.clock(), head)
        commits, force_pushed = self._commits(cursor, head)
        return GitObservation(
            reachable=True,
            head=head,
            commits=tuple(commits),
            force_pushed=force_pushed,
            **_file_fields(self._read(head, paths), paths),
        )

    def _commits(self, cursor: str | None, head: str) -> tuple[list[Commit], bool]:
        """(commits cursor..head oldest first, force_pushed). Baseline (no cursor) → none."""
        self.last_truncated = None
        if cursor is None or cursor == head:
            return [], False
        if not self.cache.has_commit(cursor) or not self.cache.is_ancestor(cursor, head):
            log.warning(
                "FORCE-PUSH on %s %s: cursor %s is not an ancestor of head %s; "
                "history was rewritten, the caller must re-baseline",
                redact_url(self.url),
                self.branch,
                cursor,
                head,
            )
            return [], True
        commits, capped = self.cache.commits_between(cursor, head, self.max_commits)
        if capped:
            total = self.cache.count_between(cursor, head)
            self.last_truncated = total
            log.warning(
                "%d new commits on %s %s; listing only the newest %d",
                total,
                redact_url(self.url),
                self.branch,
                self.max_commits,
            )
        return commits, False

    def _read(self, head: str, paths: list[str]) -> dict[str, str | TooLarge | None]:
        cached = self._files.pop(head, {})
        self._files[head] = cached  # most recently used last
        missing = [p for p in dict.fromkeys(paths) if p not in cached]
        if missing:
            cached.update(self.cache.read_files(head, missing))
        while len(self._files) > _KEPT_HEADS:
            self._files.pop(next(iter(self._files)))
        return {p: cached[p] for p in paths}


def _file_fields(cached: dict[str, str | TooLarge | None], paths: list[str]) -> dict[str, Any]:
    """``files`` and ``oversized`` of a GitObservation from cached reads."""
    files: dict[str, str | None] = {}
    oversized: dict[str, int] = {}
    for path in paths:
        value = cached[path]
        if isinstance(value, TooLarge):
            files[path] = None
            oversized[path] = value.size
        else:
            files[path] = value
    return {"files": files, "oversized": oversized}

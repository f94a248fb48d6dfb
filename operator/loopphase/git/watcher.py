"""RemoteWatcher: what the pushed branch of one remote looks like, cheaply, every tick."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from loopphase.core.observations import Commit, GitObservation, GitSourceKind
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
    on the injected ``clock``; ``min_interval`` > 0 memoises the last ``ls-remote`` that long
    (a caller may ask for another age per call: ``max_age``, e.g. a slow safety-net poll).

    ``hint()`` (a verified push webhook) drops the memo without waiting for the lock, so the
    next observe asks the remote; that ``ls-remote`` and every answer given from it report
    ``source="webhook"``, the others ``"poll"``. An ``ls-remote`` already running when the
    hint arrives is not memoised (it may predate the push).
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
        self.reads_by: Counter[GitSourceKind] = Counter()  # remote head reads by cause
        self.last_truncated: int | None = None  # total commit count when the last list was capped
        self.last_webhook_at: datetime | None = None
        self.hints = 0
        # (clock time, head or None, what caused the ls-remote)
        self._memo: tuple[float, str | None, GitSourceKind] | None = None
        self._hint_lock = threading.Lock()  # never held across git: hint() may not block
        self._webhook_pending = False
        self._files: dict[str, dict[str, str | TooLarge | None]] = {}

    def __repr__(self) -> str:
        return f"RemoteWatcher({redact_url(self.url)!r}, {self.branch!r})"

    @property
    def fetches(self) -> int:
        return self.cache.fetches

    # -- webhooks -----------------------------------------------------------------------------

    def hint(self, at: datetime, sha: str | None = None) -> None:
        """A verified webhook said the branch moved (to ``sha``, unverified): the next observe
        asks the remote, whatever the memo's age. Safe to call from the event loop."""
        with self._hint_lock:
            self.hints += 1
            self._memo = None
            self._webhook_pending = True
            if self.last_webhook_at is None or at > self.last_webhook_at:
                self.last_webhook_at = at
        log.debug("%r: webhook hint %s", self, (sha or "?")[:12])

    # -- head ---------------------------------------------------------------------------------

    def head(self) -> str:
        """The remote branch head via ``ls-remote``; raises GitRemoteError (redacted)."""
        with self.lock:
            if self.backoff.blocked():
                raise GitRemoteError(self.backoff.message())
            try:
                sha, _ = self._remote_head()
            except GitRemoteError as exc:
                self._failed(str(exc))
                raise
            self.backoff.success()
            if sha is None:
                raise GitRemoteError(self._no_branch())
            return sha

    def _fresh(self, max_age: float | None) -> tuple[float, str | None, GitSourceKind] | None:
        """The memo when it is younger than ``max_age`` (default ``min_interval``), else None."""
        age = self.min_interval if max_age is None else max_age
        memo = self._memo
        if memo is None or age <= 0 or self.clock() - memo[0] >= age:
            return None
        return memo

    def _remote_head(self, max_age: float | None = None) -> tuple[str | None, GitSourceKind]:
        """(head, source): the remote head (memoised for ``max_age``); None when the branch
        does not exist; source says what caused the remote read behind the answer.

        A poll asks with ``ls-remote`` (usually nothing moved, and that is the cheapest
        question). After a webhook the branch almost certainly moved, so the head is read by
        fetching it straight away: one request to the git host instead of two. Either way the
        head comes from the remote, never from the webhook's payload."""
        memo = self._fresh(max_age)
        if memo is not None:
            return memo[1], memo[2]
        with self._hint_lock:
            hints = self.hints
            source: GitSourceKind = "webhook" if self._webhook_pending else "poll"
            self._webhook_pending = False
        now = self.clock()
        sha = self._fetch_head() if source == "webhook" else None
        if sha is None:
            sha = self._ls_remote()
        self.reads_by[source] += 1
        with self._hint_lock:
            if self.hints == hints:  # no webhook meanwhile: the answer may be reused
                self._memo = (now, sha, source)
        return sha, source

    def _ls_remote(self) -> str | None:
        self.ls_remotes += 1
        ref = f"refs/heads/{self.branch}"
        out = self.runner.check(["ls-remote", self.url, ref]).text
        sha: str | None = None
        for line in out.splitlines():
            parts = line.split("\t")
            if len(parts) == 2 and parts[1] == ref:
                sha = parts[0].strip()
        return sha

    def _fetch_head(self) -> str | None:
        """Fetch the branch and return its head; None when that failed (e.g. no such branch
        any more): the caller asks with ls-remote, which tells "no branch" from trouble."""
        try:
            return self.cache.fetch()
        except GitRemoteError as exc:
            log.info("%r: fetch after a webhook failed (%s); asking with ls-remote", self, exc)
            return None

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

    def observe(
        self, cursor: str | None, paths: Sequence[str], max_age: float | None = None
    ) -> GitObservation:
        """The pushed branch since ``cursor``. Never raises for remote trouble: it reports it.
        ``max_age``: reuse a memoised ``ls-remote`` this young (default ``min_interval``)."""
        with self.lock:
            if self.backoff.blocked():
                return GitObservation(reachable=False, error=self.backoff.message())
            try:
                obs = self._observe(cursor, list(paths), max_age)
            except GitRemoteError as exc:
                self._failed(str(exc))
                return GitObservation(reachable=False, error=str(exc))
            self.backoff.success()  # the remote answered (even "no such branch")
            return obs

    def observe_memoised(
        self, cursor: str | None, paths: Sequence[str], max_age: float | None = None
    ) -> GitObservation | None:
        """The answer ``observe`` would give without running git, or None when git is needed.

        Only while the memoised ``ls-remote`` is fresh, the head is the caller's cursor and every
        path was read at it; never waits for the lock (a busy watcher means git is running).
        Lets the async callers skip the worker-thread hop on the usual "nothing new" tick.
        """
        if not self.lock.acquire(blocking=False):
            return None
        try:
            memo = self._fresh(max_age)
            if memo is None or memo[1] is None or memo[1] != cursor or self.backoff.blocked():
                return None
            cached = self._files.get(memo[1], {})
            if not all(p in cached for p in paths):
                return None
            self.backoff.success()
            return GitObservation(reachable=True, head=memo[1], **_file_fields(cached, paths),
                                  source=memo[2], webhook_at=self.last_webhook_at)
        finally:
            self.lock.release()

    def _observe(self, cursor: str | None, paths: list[str], max_age: float | None) -> GitObservation:
        head, source = self._remote_head(max_age)
        webhook_at = self.last_webhook_at
        if head is None:
            # Reachable but no such branch (e.g. nothing pushed yet): a condition, not a failure.
            return GitObservation(reachable=False, error=self._no_branch(), source=source,
                                  webhook_at=webhook_at)
        cached = self._files.get(head, {})
        if head == cursor and all(p in cached for p in paths):
            return GitObservation(reachable=True, head=head, **_file_fields(cached, paths),
                                  source=source, webhook_at=webhook_at)
        if not self.cache.has_commit(head):
            fetched = self.cache.fetch()
            if not self.cache.has_commit(head):  # moved again (rewritten) since ls-remote
                log.info("remote head moved during fetch: %s -> %s", head, fetched)
                head = fetched
                with self._hint_lock:
                    if not self._webhook_pending:
                        self._memo = (self.clock(), head, source)
        commits, force_pushed = self._commits(cursor, head)
        return GitObservation(
            reachable=True,
            head=head,
            commits=tuple(commits),
            force_pushed=force_pushed,
            **_file_fields(self._read(head, paths), paths),
            source=source,
            webhook_at=webhook_at,
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

"""The local bare cache of one (url, branch): fetch, ancestry, commit listing, file reads.

Built on GitPython: commands that may take time (init, fetch, rev-list, merge-base) run through
``GitRunner`` (GitPython-spawned, a kill timeout on the whole process group, redacted errors);
objects (commit subjects, blob sizes, blob contents) are read through ``git.Repo``'s object
database, i.e. git's ``cat-file --batch-check``/``--batch`` kept open for the duration of one
call and closed with the ``Repo`` (a ``with`` block), so no git process outlives a call. Those
local reads have no kill timeout of their own (GitPython offers none for its object readers);
the network and the history walks do.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import git
from gitdb.exc import BadObject

from loopphase.core.files import normalize_repo_path
from loopphase.core.observations import Commit
from loopphase.git.errors import GitRemoteError
from loopphase.git.redact import redact_url
from loopphase.git.runner import GitRunner

log = logging.getLogger(__name__)

_SHA_RE = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")


# The most a pushed file read may cost, whatever the spec says (spec.repo.maxFileBytes caps
# lower). Status and inbox files are a few KiB; 8 MiB leaves room and bounds memory.
MAX_FILE_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class TooLarge:
    """A file at the pushed head that was not read because of its size (bytes)."""

    size: int


def is_sha(value: str) -> bool:
    return bool(_SHA_RE.match(value))


def cache_dir_name(url: str, branch: str) -> str:
    """A stable, credential-free directory name for (url, branch)."""
    digest = hashlib.sha256(f"{url}\0{branch}".encode()).hexdigest()[:16]
    tail = re.sub(r"[^A-Za-z0-9._-]+", "-", redact_url(url).rsplit("/", 1)[-1])[:40].strip("-.")
    return f"{tail or 'repo'}-{branch.replace('/', '-')}-{digest}.git"


class CacheRepo:
    """A bare repository holding only ``refs/loopphase/<branch>``, created on first use."""

    def __init__(self, runner: GitRunner, path: Path, branch: str) -> None:
        self.runner = runner
        self.path = path
        self.branch = branch
        self.ref = f"refs/loopphase/{branch}"
        self.fetches = 0
        self.reads = 0  # Repo objects opened (each reads objects through its own cat-file)

    def _git(self, *args: str) -> str:
        return self.runner.check(args, cwd=self.path).text

    def _repo(self) -> git.Repo:
        """The cache as a GitPython repository; use as a context manager: closing ends its
        object-reading git processes."""
        self.reads += 1
        return git.Repo(self.path)

    def ensure(self) -> None:
        """Create the bare cache if missing: init in a temp dir, then rename into place, so a
        half-initialised cache is never seen (another process may share the cache dir)."""
        if (self.path / "HEAD").exists():
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".init-", dir=self.path.parent))
        try:
            self.runner.check(["init", "--bare", "--quiet", str(tmp)])
            try:
                tmp.rename(self.path)
            except OSError as exc:
                if not (self.path / "HEAD").exists():
                    raise GitRemoteError(f"cannot create git cache {self.path}: {exc}") from None
                log.debug("git cache %s was created concurrently", self.path)
            else:
                log.info("created git cache %s", self.path)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    def fetch(self) -> str:
        """Fetch the branch (forced: history may be rewritten); returns the fetched sha."""
        self.ensure()
        self.fetches += 1
        self._git(
            "fetch",
            "--quiet",
            "--no-tags",
            "--no-recurse-submodules",
            self.runner.url,
            f"+refs/heads/{self.branch}:{self.ref}",
        )
        return self._git("rev-parse", "--verify", f"{self.ref}^{{commit}}").strip()

    def has_commit(self, sha: str) -> bool:
        if not (self.path / "HEAD").exists() or not is_sha(sha):
            return False
        with self._repo() as repo:
            try:
                return repo.odb.info(bytes.fromhex(sha)).type == b"commit"
            except (BadObject, ValueError):
                return False

    def is_ancestor(self, ancestor: str, head: str) -> bool:
        """True when ``ancestor`` is reachable from ``head`` (both must be present)."""
        result = self.runner.run(["merge-base", "--is-ancestor", ancestor, head], cwd=self.path)
        if result.returncode in (0, 1):
            return result.returncode == 0
        raise GitRemoteError(self.runner.describe_failure(result))

    def commits_between(self, base: str, head: str, limit: int) -> tuple[list[Commit], bool]:
        """Commits in ``base..head`` oldest first; keeps the newest ``limit``; (commits, capped).

        The walk is ``git rev-list`` (under the kill timeout); subjects come from the object
        database (git's ``%s``: the first paragraph of the message, lines joined)."""
        out = self._git("rev-list", f"--max-count={limit + 1}", f"{base}..{head}")
        shas = [line for line in out.splitlines() if line]
        capped = len(shas) > limit
        with self._repo() as repo:
            commits = [Commit(sha=sha, subject=_subject(repo.commit(sha).message))
                       for sha in shas[:limit]]
        return list(reversed(commits)), capped

    def count_between(self, base: str, head: str) -> int:
        return int(self._git("rev-list", "--count", f"{base}..{head}").strip() or 0)

    def read_files(
        self, head: str, paths: Sequence[str], max_bytes: int = MAX_FILE_BYTES
    ) -> dict[str, str | TooLarge | None]:
        """Contents of ``paths`` at ``head`` (None = absent or not a regular file).

        Sizes come from the object headers first; a blob over ``max_bytes`` is never read
        (``TooLarge(size)`` instead), so an agent pushing a 60 MB status file costs nothing but
        a warning. One ``Repo`` (two ``cat-file`` processes at most) per call.
        """
        result: dict[str, str | TooLarge | None] = {}
        wanted: list[tuple[str, str]] = []
        for path in paths:
            clean = normalize_repo_path(path)
            if clean is None:
                log.warning("ignoring unreadable repository path %r", path)
                result[path] = None
            else:
                wanted.append((path, clean))
        if not wanted:
            return result
        with self._repo() as repo:
            tree = repo.commit(head).tree
            for path, clean in wanted:
                try:
                    item = tree / clean
                except KeyError:
                    result[path] = None  # absent
                    continue
                if item.type != "blob":
                    result[path] = None  # a tree or a submodule
                elif item.size > max_bytes:
                    result[path] = TooLarge(int(item.size))  # never read
                else:
                    result[path] = item.data_stream.read().decode("utf-8", "replace")
        return result


def _subject(message: str | bytes) -> str:
    """git's ``%s``: the message's first paragraph, its lines joined by spaces."""
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
    paragraph = text.strip().split("\n\n", 1)[0]
    return " ".join(line.strip() for line in paragraph.splitlines())

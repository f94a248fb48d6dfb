"""The local bare cache of one (url, branch): fetch, ancestry, commit listing, file reads."""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

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

    def _git(self, *args: str, stdin: bytes | None = None) -> str:
        return self.runner.check(args, cwd=self.path, stdin=stdin).text

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
        result = self.runner.run(["cat-file", "-e", f"{sha}^{{commit}}"], cwd=self.path)
        return result.returncode == 0

    def is_ancestor(self, ancestor: str, head: str) -> bool:
        """True when ``ancestor`` is reachable from ``head`` (both must be present)."""
        result = self.runner.run(["merge-base", "--is-ancestor", ancestor, head], cwd=self.path)
        if result.returncode in (0, 1):
            return result.returncode == 0
        raise GitRemoteError(self.runner.describe_failure(result))

    def commits_between(self, base: str, head: str, limit: int) -> tuple[list[Commit], bool]:
        """Commits in ``base..head`` oldest first; keeps the newest ``limit``; (commits, capped)."""
        out = self._git(
            "log", "--no-color", "--format=%H%x1f%s", f"--max-count={limit + 1}", f"{base}..{head}"
        )
        rows = [line.split("\x1f", 1) for line in out.splitlines() if line]
        commits = [Commit(sha=row[0], subject=row[1] if len(row) > 1 else "") for row in rows]
        capped = len(commits) > limit
        return list(reversed(commits[:limit])), capped

    def count_between(self, base: str, head: str) -> int:
        return int(self._git("rev-list", "--count", f"{base}..{head}").strip() or 0)

    def read_files(
        self, head: str, paths: Sequence[str], max_bytes: int = MAX_FILE_BYTES
    ) -> dict[str, str | TooLarge | None]:
        """Contents of ``paths`` at ``head`` (None = absent or not a regular file).

        Sizes are asked first (``cat-file --batch-check``); a blob over ``max_bytes`` is never
        read (``TooLarge(size)`` instead), so an agent pushing a 60 MB status file costs
        nothing but a warning. Two git processes per call at most.
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
        request = "".join(f"{head}:{clean}\n" for _, clean in wanted).encode()
        sizes = self.runner.check(["cat-file", "--batch-check"], cwd=self.path, stdin=request).stdout
        readable: list[tuple[str, str]] = []
        for (path, clean), line in zip(wanted, sizes.decode("utf-8", "replace").splitlines(), strict=True):
            parts = line.rsplit(" ", 2)
            if len(parts) != 3 or parts[1] != "blob" or not parts[2].isdigit():
                result[path] = None  # "<name> missing", a tree, ...
            elif int(parts[2]) > max_bytes:
                result[path] = TooLarge(int(parts[2]))
            else:
                readable.append((path, clean))
        if not readable:
            return result
        request = "".join(f"{head}:{clean}\n" for _, clean in readable).encode()
        data = self.runner.check(["cat-file", "--batch"], cwd=self.path, stdin=request).stdout
        pos = 0
        for path, _ in readable:
            end = data.index(b"\n", pos)
            header = data[pos:end].decode("utf-8", "replace")
            pos = end + 1
            parts = header.rsplit(" ", 2)
            if len(parts) == 3 and parts[2].isdigit() and parts[1] == "blob":
                size = int(parts[2])
                result[path] = data[pos : pos + size].decode("utf-8", "replace")
                pos += size + 1  # content + trailing newline
            else:  # changed between the two calls cannot happen at a fixed sha; be safe
                result[path] = None
        return result

"""One `loopphase run` per repository branch on this machine.

Two copies of a spec (in two folders, so two state directories) on one repository and branch
would run two loops at once: four agents pushing one branch. Each runner therefore holds, for
its lifetime, a lock keyed by the normalised repository URL and the branch, in a directory
shared by every run of this user on the machine: ``$XDG_RUNTIME_DIR/loopphase/branch-locks/``
(else ``/tmp/loopphase-<uid>/branch-locks/``; 0700, refused when another user owns it), one
file per key, ``<sha256(url + NUL + branch)[:32]>.lock`` holding
``{"pid", "stateDir", "spec", "repo" (credentials masked), "branch"}`` (0600). The lock is a
``flock`` (``runner.locks``): the kernel drops it when the runner exits, however it exits.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from loopphase.outbound import redact_patterns
from loopphase.runner import locks
from loopphase.runner.secure import check_owned_private, private_dir

_SCP_LIKE = re.compile(r"^(?:[^@/:]+@)?([^/:]+):(?!//)(.+)$")  # git@host:owner/repo.git


class BranchLocked(RuntimeError):
    """Another live `loopphase run` drives the same repository branch."""


def lock_dir() -> Path:
    """Where the locks live: the user's runtime directory (``$XDG_RUNTIME_DIR``, a per-user
    tmpfs made for such files), else ``<tmp>/loopphase-<uid>``; never the user's home, which a
    run leaves byte for byte as it found it."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and Path(runtime).is_dir():
        return Path(runtime) / "loopphase" / "branch-locks"
    return Path(tempfile.gettempdir()) / f"loopphase-{os.getuid()}" / "branch-locks"


def normalise_repo(url: str, base: Path) -> str:
    """One spelling per repository: credentials dropped, host lower-cased, a trailing ``/``
    and ``.git`` removed, ``git@host:path`` as ``ssh://host/path``, a local path (or
    ``file://``) resolved against ``base`` (the spec's folder) with symlinks followed."""
    text = url.strip()
    parts = urlsplit(text)
    if parts.scheme == "file" or (not parts.scheme and not _SCP_LIKE.match(text)):
        path = Path(parts.path if parts.scheme == "file" else text).expanduser()
        return "file://" + str((base / path).resolve()).removesuffix(".git").rstrip("/")
    scp = _SCP_LIKE.match(text) if not parts.scheme else None
    if scp is not None:
        scheme, host, path = "ssh", scp.group(1).lower(), "/" + scp.group(2).lstrip("/")
    else:
        scheme, host, path = parts.scheme.lower(), (parts.hostname or "").lower(), parts.path
        if parts.port:
            host = f"{host}:{parts.port}"
    path = path.rstrip("/").removesuffix(".git")
    return urlunsplit((scheme if scheme != "git+ssh" else "ssh", host, path, "", ""))


class BranchLock:
    """Held by a live runner for its repository branch; ``acquire`` refuses a second run."""

    def __init__(self, url: str, branch: str, base: Path, *, state_dir: Path, spec: Path,
                 directory: Path | None = None) -> None:
        self.key = f"{normalise_repo(url, base)}\0{branch}"
        self.url, self.branch = url, branch
        self.state_dir, self.spec = state_dir, spec
        self.directory = directory or lock_dir()
        self.path = self.directory / f"{hashlib.sha256(self.key.encode()).hexdigest()[:32]}.lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        private_dir(self.directory)
        check_owned_private(self.directory.parent)  # in /tmp, a squatter's parent is refused
        record = {"pid": os.getpid(), "stateDir": str(self.state_dir.resolve()),
                  "spec": str(self.spec.resolve()), "repo": redact_patterns(self.url),
                  "branch": self.branch}
        try:
            self._fd = locks.acquire(self.path, json.dumps(record))
        except locks.Held as err:
            try:
                other = json.loads(err.text)
            except ValueError:
                other = {}
            raise BranchLocked(
                f"another `loopphase run` (pid {other.get('pid', '?')}, state dir "
                f"{other.get('stateDir', '?')}, spec {other.get('spec', '?')}) already drives "
                f"{redact_patterns(self.url)} branch {self.branch}: two loops would push the same "
                f"branch. Stop it (`loopphase run {other.get('spec', 'SPEC')} --stop`) or give "
                f"this spec another repo.branch (lock {self.path})"
            ) from err

    def release(self) -> None:
        if self._fd is not None:
            locks.release(self._fd)
            self._fd = None

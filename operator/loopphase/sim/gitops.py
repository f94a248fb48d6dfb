"""Real git actions of the simulated agent: argv lists, timeouts, pull --rebase before push."""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

log = logging.getLogger(__name__)

GIT_TIMEOUT = 30.0
DEFAULT_IDENTITY = {
    "GIT_AUTHOR_NAME": "LoopPhase Sim",
    "GIT_AUTHOR_EMAIL": "sim@loopphase.invalid",
    "GIT_COMMITTER_NAME": "LoopPhase Sim",
    "GIT_COMMITTER_EMAIL": "sim@loopphase.invalid",
}


class GitError(RuntimeError):
    pass


def git(workdir: Path, *args: str, timeout: float = GIT_TIMEOUT) -> str:
    argv = ["git", *args]
    env = dict(os.environ)
    for key, value in DEFAULT_IDENTITY.items():
        env.setdefault(key, value)
    env.setdefault("GIT_TERMINAL_PROMPT", "0")
    try:
        proc = subprocess.run(
            argv, cwd=workdir, capture_output=True, text=True, timeout=timeout, check=False,
            env=env, stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        raise GitError(f"{' '.join(argv)} timed out after {timeout}s") from exc
    if proc.returncode != 0:
        raise GitError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def safe_path(workdir: Path, rel: str) -> Path:
    """Resolve ``rel`` inside ``workdir``; refuse escapes."""
    target = (workdir / rel).resolve()
    root = workdir.resolve()
    if target != root and root not in target.parents:
        raise GitError(f"path {rel!r} escapes the working directory")
    return target


def write_files(workdir: Path, files: dict[str, str]) -> list[str]:
    written = []
    for rel, content in files.items():
        path = safe_path(workdir, rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(str(content), encoding="utf-8")
        written.append(rel)
    return written


def delete_files(workdir: Path, paths: list[str]) -> list[str]:
    deleted = []
    for rel in paths:
        path = safe_path(workdir, rel)
        if path.exists():
            path.unlink()
            deleted.append(rel)
    return deleted


def commit(workdir: Path, message: str, paths: list[str]) -> str | None:
    """Stage exactly ``paths`` (additions and deletions) and commit; None when nothing changed."""
    if paths:
        git(workdir, "add", "-A", "--", *paths)
    status = git(workdir, "status", "--porcelain", "--untracked-files=no")
    staged = [line for line in status.splitlines() if line[:1] not in {" ", "?"}]
    if not staged:
        log.info("git: nothing staged for %r, no commit", message)
        return None
    git(workdir, "commit", "-m", message)
    sha = git(workdir, "rev-parse", "HEAD").strip()
    log.info("git: committed %s %r", sha[:10], message)
    return sha


def current_branch(workdir: Path) -> str:
    return git(workdir, "rev-parse", "--abbrev-ref", "HEAD").strip()


def pull(workdir: Path) -> None:
    """Bring the clone up to date before touching files, as a real agent pulls first."""
    git(workdir, "pull", "--rebase", "--autostash", "--quiet", "origin", current_branch(workdir))


def push(workdir: Path) -> None:
    """pull --rebase, push; on rejection pull --rebase again and retry once."""
    branch = current_branch(workdir)
    git(workdir, "pull", "--rebase", "--autostash", "origin", branch)
    try:
        git(workdir, "push", "origin", f"HEAD:{branch}")
    except GitError as exc:
        log.warning("git: push rejected (%s); pulling and retrying once", exc)
        git(workdir, "pull", "--rebase", "--autostash", "origin", branch)
        git(workdir, "push", "origin", f"HEAD:{branch}")
    log.info("git: pushed %s", branch)

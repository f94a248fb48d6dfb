"""Helpers for git watching tests: a real bare remote plus a working clone that pushes to it."""

from __future__ import annotations

import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from loopphase.git.runner import GitResult
from loopphase.git.watcher import RemoteWatcher

GIT_ID = ["-c", "user.name=Test", "-c", "user.email=test@example.invalid"]


def git(cwd: Path, *args: str) -> str:
    """Run a git command for test setup; fail loudly."""
    out = subprocess.run(
        ["git", *GIT_ID, *args], cwd=cwd, check=True, capture_output=True, text=True, timeout=20
    )
    return out.stdout.strip()


@dataclass
class Remote:
    """A bare repository (``url``) and a clone (``work``) of it on branch ``main``."""

    bare: Path
    work: Path

    @property
    def url(self) -> str:
        return str(self.bare)

    def write(self, path: str, content: str) -> None:
        target = self.work / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
        git(self.work, "add", path)

    def delete(self, path: str) -> None:
        git(self.work, "rm", "-q", path)

    def commit(self, subject: str, files: dict[str, str] | None = None, push: bool = True) -> str:
        for path, content in (files or {}).items():
            self.write(path, content)
        git(self.work, "commit", "-q", "--allow-empty", "-m", subject)
        if push:
            self.push()
        return self.sha()

    def push(self, force: bool = False) -> None:
        git(self.work, "push", "-q", *(["--force"] if force else []), "origin", "main")

    def sha(self, rev: str = "HEAD") -> str:
        return git(self.work, "rev-parse", rev)


class FakeClock:
    """A manual monotonic clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def count_git_calls(watcher: RemoteWatcher) -> Counter[str]:
    """Count every git command the watcher runs, by subcommand (ls-remote, fetch...), and as
    ``cat-file`` every object read (a GitPython ``Repo`` over the cache: cat-file processes)."""
    calls: Counter[str] = Counter()
    real_run = watcher.runner.run
    real_repo = watcher.cache._repo

    def counting_run(args, **kwargs) -> GitResult:  # type: ignore[no-untyped-def]
        calls[args[0]] += 1
        return real_run(args, **kwargs)

    def counting_repo():  # type: ignore[no-untyped-def]
        calls["cat-file"] += 1
        return real_repo()

    watcher.runner.run = counting_run  # type: ignore[method-assign]
    watcher.cache._repo = counting_repo  # type: ignore[method-assign]
    return calls

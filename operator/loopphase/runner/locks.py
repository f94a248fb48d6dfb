"""Exclusive, non-blocking file locks held for a process's lifetime (``flock``).

``run.lock`` in a state directory and the machine-wide branch locks (``runner.branch_lock``)
are held this way: the kernel drops the lock when the holder exits, however it exits, so a
killed runner never leaves a stale lock behind. The file holds what the holder wrote (its pid,
or a JSON record) for the messages of those refused.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class Held(RuntimeError):
    """The lock is held by another process; ``text`` is what the holder wrote in the file."""

    def __init__(self, path: Path, text: str) -> None:
        super().__init__(f"{path} is held by another process")
        self.text = text


def acquire(path: Path, text: str) -> int:
    """Take the lock on ``path`` (created 0600, no symlinks followed) and write ``text`` into
    it; returns the fd to pass to ``release``. Raises ``Held`` when another process holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as err:
        try:
            held = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
        finally:
            os.close(fd)
        raise Held(path, held) from err
    os.ftruncate(fd, 0)
    os.pwrite(fd, text.encode(), 0)
    return fd


def release(fd: int) -> None:
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)

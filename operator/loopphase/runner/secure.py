"""Private files for a local run: 0700 directories we own, 0600 files created without
following symlinks.

The state directory holds each shim's bearer token (whoever has it can type into the agent),
the prompts and the agents' working copies, so it must not be readable by other local users,
and nobody else may be able to plant a symlink or a file in it. Errors are ``UnsafeStateDir``
with a message naming the path and the fix.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


class UnsafeStateDir(RuntimeError):
    """A state path is owned by someone else, writable by others, or a symlink."""


def check_owned_private(path: Path) -> None:
    """Refuse a directory that another user owns or that others may write to (or a symlink)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(info.st_mode):
        raise UnsafeStateDir(
            f"{path} is a symlink: refusing to keep run state (tokens, prompts) behind it; "
            "remove the link or pass --state-dir with a real directory"
        )
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafeStateDir(f"{path} exists and is not a directory; move it away or pass --state-dir")
    if info.st_uid != os.geteuid():
        raise UnsafeStateDir(
            f"{path} is owned by uid {info.st_uid}, not you (uid {os.geteuid()}): another user "
            "could read the agents' tokens or plant files; use your own --state-dir"
        )
    if info.st_mode & 0o022:
        raise UnsafeStateDir(
            f"{path} is writable by others (mode {stat.S_IMODE(info.st_mode):o}); "
            f"run `chmod go-w {path}` (or `chmod 700 {path}`) or use another --state-dir"
        )


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) as 0700, or check an existing one; returns it."""
    missing: list[Path] = []
    probe = path
    while not probe.exists() and not probe.is_symlink() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, DIR_MODE)
        except FileExistsError:
            pass  # created concurrently: checked below like any existing directory
        os.chmod(directory, DIR_MODE, follow_symlinks=False)
    check_owned_private(path)
    if stat.S_IMODE(os.lstat(path).st_mode) & 0o077:
        os.chmod(path, DIR_MODE)  # ours, from an older version: close it to group and others
    return path


def write_private(path: Path, data: str | bytes) -> None:
    """Write ``path`` atomically as a 0600 file: a fresh temp file (O_EXCL|O_NOFOLLOW, so a
    planted file or symlink is never written through), fsync, then rename over ``path``
    (rename replaces a symlink itself, never its target)."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def open_private_append(path: Path) -> int:
    """An O_APPEND descriptor on a 0600 file, never through a symlink (caller closes it)."""
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)

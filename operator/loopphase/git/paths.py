"""Where loop-state files live on the branch: state dir first, then the repository root."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping


def normalize_repo_path(path: str) -> str | None:
    """A clean repository-relative POSIX path, or None if it escapes the root or is empty."""
    if not path or "\n" in path or "\x00" in path:
        return None
    clean = posixpath.normpath(path.replace("\\", "/")).lstrip("/")
    if clean in ("", ".") or clean == ".." or clean.startswith("../"):
        return None
    return clean


def status_file_candidates(state_dir: str, status_file: str) -> list[str]:
    """Paths to try for a phase status file, in order: ``<state_dir>/<file>``, then ``<file>``."""
    out: list[str] = []
    base = normalize_repo_path(status_file)
    if base is None:
        return out
    if state_dir and normalize_repo_path(state_dir) is not None:
        joined = normalize_repo_path(posixpath.join(state_dir, base))
        if joined is not None:
            out.append(joined)
    if base not in out:
        out.append(base)
    return out


def resolve_status_file(
    files: Mapping[str, str | None], state_dir: str, status_file: str
) -> tuple[str | None, str | None]:
    """The first candidate present in ``files`` (content not None): ``(path, content)``.

    Returns ``(None, None)`` when no candidate exists on the branch.
    """
    for path in status_file_candidates(state_dir, status_file):
        content = files.get(path)
        if content is not None:
            return path, content
    return None, None

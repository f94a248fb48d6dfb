"""Which files at the pushed ref the core needs, and where it looks for them (pure)."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping

from loopphase.api.spec import LoopPhaseSpec, LoopRole

INBOX_OF: dict[LoopRole, str] = {"adversary": "adversary_inbox", "builder": "builder_inbox"}


def normalize_repo_path(path: str) -> str | None:
    """A clean repository-relative POSIX path, or None if it escapes the root or is empty."""
    if not path or "\n" in path or "\x00" in path:
        return None
    clean = posixpath.normpath(path.replace("\\", "/")).lstrip("/")
    if clean in ("", ".") or clean == ".." or clean.startswith("../"):
        return None
    return clean


def candidates(state_dir: str, name: str) -> list[str]:
    """The state dir first, then the repository root (like the reference launcher)."""
    base = normalize_repo_path(name)
    if base is None:
        return []
    out: list[str] = []
    if state_dir and normalize_repo_path(state_dir) is not None:
        joined = normalize_repo_path(posixpath.join(state_dir, base))
        if joined is not None:
            out.append(joined)
    if base not in out:
        out.append(base)
    return out


def resolve(files: Mapping[str, str | None], state_dir: str, name: str) -> tuple[str | None, str | None]:
    """(path, content) of the first candidate present in ``files``; (None, None) if none is."""
    for path in candidates(state_dir, name):
        content = files.get(path)
        if content is not None:
            return path, content
    return None, None


def inbox_name(spec: LoopPhaseSpec, role: LoopRole) -> str:
    return getattr(spec.handoff, INBOX_OF[role])


def paths_to_read(spec: LoopPhaseSpec, phase_index: int) -> list[str]:
    """Every path the shell must read at the pushed head for this phase."""
    state_dir = spec.repo.state_dir
    names = [spec.phases[phase_index].status_file, *(inbox_name(spec, r) for r in INBOX_OF)]
    paths: list[str] = []
    for name in names:
        for path in candidates(state_dir, name):
            if path not in paths:
                paths.append(path)
    return paths

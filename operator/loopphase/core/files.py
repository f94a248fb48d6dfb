"""Which files at the pushed ref the core needs, and where it looks for them (pure)."""

from __future__ import annotations

from collections.abc import Mapping

from loopphase.api.spec import LoopPhaseSpec, LoopRole

INBOX_OF: dict[LoopRole, str] = {"adversary": "adversary_inbox", "builder": "builder_inbox"}


def candidates(state_dir: str, name: str) -> list[str]:
    """The state dir first, then the repository root (like the reference launcher)."""
    inside = f"{state_dir.rstrip('/')}/{name}" if state_dir else name
    return [inside, name] if inside != name else [name]


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

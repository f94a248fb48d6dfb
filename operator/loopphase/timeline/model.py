"""A run's history as plain data: state spans per role, limit windows, heals, pings, phases.

Read from a local run's state directory: ``states.jsonl`` (each agent state change, with the
limit class while a window is armed) and ``actions.jsonl`` (every action and decision).
Times are timezone-aware datetimes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from loopphase.runner.store import StateStore

ROLE_ORDER = ("builder", "adversary", "orchestrator")
PING_SOURCE = {"claim": "builder", "review": "adversary"}


@dataclass(frozen=True)
class Span:
    role: str
    start: datetime
    end: datetime
    label: str  # a state, or a limit class for a window


@dataclass(frozen=True)
class Mark:
    role: str
    time: datetime
    label: str  # heal tier, or ping kind
    source: str | None = None  # pings: the lane the arrow starts from


@dataclass
class Timeline:
    roles: list[str]
    start: datetime
    end: datetime
    states: list[Span] = field(default_factory=list)
    limits: list[Span] = field(default_factory=list)
    heals: list[Mark] = field(default_factory=list)
    pings: list[Mark] = field(default_factory=list)
    phases: list[tuple[datetime, str]] = field(default_factory=list)


class NoHistory(ValueError):
    """The state directory holds no recorded run."""


class NoStateDir(ValueError):
    """The state directory does not exist."""


class TornLog(ValueError):
    """A line before the last of a log does not parse: ``FILE:LINE: ...``."""


def read_log(path: Path, warn: Callable[[str], None]) -> list[dict[str, Any]]:
    """The JSON records of a ``*.jsonl`` log (none when it is missing).

    A LAST line that does not parse is a write cut short (the runner killed mid-append): it is
    skipped and ``warn`` gets ``FILE:LINE: ...``. Any other bad line raises ``TornLog``.
    """
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    records = []
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError("not a JSON object")
        except ValueError as err:
            where = f"{path}:{index + 1}"
            if index == last:
                warn(f"{where}: skipped a torn last line (a write cut short): {err}")
                continue
            raise TornLog(f"{where}: not a JSON record ({err}); the log is damaged before its "
                          "last line: move the file aside to draw the other log") from err
        records.append(record)
    return records


def _time(record: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(record["time"])


def heal_tier(record: dict[str, Any]) -> str | None:
    if not str(record.get("rule", "")).startswith("heal.") or record["action"] == "EmitEvent":
        return None
    if record["action"] == "SendText":
        return "nudge"
    if record["action"] == "RestartAgent":
        return f"restart-{record.get('mode') or 'warm'}"
    if record["action"] == "RecreateHost":
        return "recreate"
    return None


def build(states: list[dict[str, Any]], actions: list[dict[str, Any]], end: datetime | None = None) -> Timeline:
    """Fold the two logs into a Timeline; ``end`` closes the last spans (default: last record)."""
    times = [_time(r) for r in states] + [_time(r) for r in actions]
    if not times:
        raise NoHistory("no recorded history (states.jsonl / actions.jsonl are empty or missing)")
    start, last = min(times), max(times)
    end = max(end or last, last)
    seen = {r["role"] for r in states} | {r["role"] for r in actions if r.get("role")}
    roles = [r for r in ROLE_ORDER if r in seen] + sorted(seen - set(ROLE_ORDER))
    tl = Timeline(roles=roles, start=start, end=end)
    open_state: dict[str, tuple[datetime, str]] = {}
    open_limit: dict[str, tuple[datetime, str]] = {}
    for record in sorted(states, key=_time):
        role, when = record["role"], _time(record)
        if role in open_state:
            began, state = open_state.pop(role)
            tl.states.append(Span(role, began, when, state))
        open_state[role] = (when, record["state"])
        cls = record.get("limitClass")
        if role in open_limit and open_limit[role][1] != cls:
            began, old = open_limit.pop(role)
            tl.limits.append(Span(role, began, when, old))
        if cls and role not in open_limit:
            open_limit[role] = (when, cls)
    for role, (began, state) in open_state.items():
        tl.states.append(Span(role, began, end, state))
    for role, (began, cls) in open_limit.items():
        tl.limits.append(Span(role, began, end, cls))
    for record in actions:
        when, role = _time(record), record.get("role")
        tier = heal_tier(record)
        if tier is not None and role:
            tl.heals.append(Mark(role, when, tier))
        elif record["action"] == "SendText" and record.get("purpose") == "ping" and role and record.get("ok", True):
            kind = str(record.get("rule", "")).split(".", 1)[-1]
            source = PING_SOURCE.get(kind) or next((r for r in ("builder", "adversary") if r != role), None)
            tl.pings.append(Mark(role, when, kind, source))
        elif record.get("kind") in {"advance", "complete", "start"} and not role:
            tl.phases.append((when, str(record['kind'])))
    return tl


def load(state_dir: Path, warn: Callable[[str], None] = lambda _text: None) -> Timeline:
    """The Timeline of the local run kept in ``state_dir``. Raises NoStateDir, TornLog (a bad
    line before the last), NoHistory; ``warn`` hears of a skipped torn last line."""
    if not state_dir.is_dir():
        raise NoStateDir(f"no such directory: {state_dir} (a run keeps its state in "
                         ".loopphase/<name>/ beside its spec file)")
    store = StateStore(state_dir, create=False)
    return build(read_log(store.states_path, warn), read_log(store.actions_path, warn))

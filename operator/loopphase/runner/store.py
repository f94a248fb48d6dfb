"""Persisted state of a local run: status (atomic temp + rename), an action log, a run lock."""

from __future__ import annotations

import fcntl
import json
import os
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from loopphase.api.status import LoopPhaseStatus


class RunLocked(RuntimeError):
    """Another `loopphase run` already drives this state directory."""


class StateStore:
    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.status_path = state_dir / "status.json"
        self.actions_path = state_dir / "actions.jsonl"
        self.states_path = state_dir / "states.jsonl"
        self.approvals_path = state_dir / "approvals.jsonl"
        self._lock_handle: IO[str] | None = None

    def lock(self) -> None:
        handle = (self.dir / "run.lock").open("w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            handle.close()
            raise RunLocked(f"another `loopphase run` is driving {self.dir}") from err
        handle.write(str(os.getpid()))
        handle.flush()
        self._lock_handle = handle

    def unlock(self) -> None:
        if self._lock_handle is not None:
            fcntl.flock(self._lock_handle, fcntl.LOCK_UN)
            self._lock_handle.close()
            self._lock_handle = None

    def load(self) -> LoopPhaseStatus:
        if not self.status_path.exists():
            return LoopPhaseStatus()
        return LoopPhaseStatus.model_validate(json.loads(self.status_path.read_text()))

    def save(self, status: LoopPhaseStatus) -> None:
        tmp = self.status_path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as handle:
            json.dump(status.to_wire(), handle, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(self.status_path)

    def append_actions(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        with self.actions_path.open("a", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record, default=_json_default) + "\n")

    def append_states(self, before: LoopPhaseStatus, after: LoopPhaseStatus, time: datetime) -> None:
        """Log each agent whose state or limit class changed in a tick (for `loopphase timeline`):
        ``{"time", "role", "state", "limitClass" (or null), "reason"}`` per line."""
        records = []
        for role, agent in after.agents.items():
            old = before.agents.get(role)
            limit = agent.limit.limit_class if agent.limit is not None else None
            old_limit = old.limit.limit_class if old is not None and old.limit is not None else None
            if old is None or old.state != agent.state or old_limit != limit:
                records.append({"time": time, "role": role, "state": agent.state,
                                "limitClass": limit, "reason": agent.reason[:200]})
        if records:
            with self.states_path.open("a", encoding="utf-8") as handle:
                for record in records:
                    handle.write(json.dumps(record, default=_json_default) + "\n")

    def read_states(self) -> list[dict[str, Any]]:
        if not self.states_path.exists():
            return []
        return [json.loads(line) for line in self.states_path.read_text().splitlines() if line]

    def append_approval(self, record: dict[str, Any]) -> None:
        """One approve/reject request (``loopphase approve``/``reject``): a single appended line."""
        with self.approvals_path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def read_approvals(self) -> list[dict[str, Any]]:
        if not self.approvals_path.exists():
            return []
        return [json.loads(line) for line in self.approvals_path.read_text().splitlines() if line]

    def read_actions(self) -> list[dict[str, Any]]:
        if not self.actions_path.exists():
            return []
        return [json.loads(line) for line in self.actions_path.read_text().splitlines() if line]


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)

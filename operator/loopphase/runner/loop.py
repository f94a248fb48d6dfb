"""The controller loop without a cluster: observe -> reconcile -> act -> persist, every tick.

Every tick also re-reads the spec file when it changed on disk: a valid edit is applied like
the operator applies a new generation (``status.observedGeneration`` counts them locally too)
and what changed is reported; an invalid edit is reported and the last good spec kept. The
state directory must stay where it was: if it disappears the run stops with ``StateDirLost``
rather than start a second agent next to the live one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loopphase.api.spec import LoopPhaseSpec, Role, agent_field
from loopphase.api.status import Condition, LoopPhaseStatus
from loopphase.controller.tick import TickResult, next_tick_delay, run_tick
from loopphase.core import holds
from loopphase.core.actions import EmitEvent, SendText
from loopphase.core.observations import ApprovalRequest
from loopphase.git import WatcherRegistry
from loopphase.git.source import WatchedRemote
from loopphase.metrics import LoopMetrics, record_tick
from loopphase.notify import Notifier, fold
from loopphase.notify.urls import LocalUrls
from loopphase.outbound import redact_patterns
from loopphase.runner.branch_lock import BranchLock
from loopphase.runner.hold_files import FileHoldRegistry
from loopphase.runner.secure import write_private
from loopphase.runner.specfile import LoadedSpec, SpecFileError, load_spec
from loopphase.runner.store import StateStore
from loopphase.runner.webhook import LocalWebhookConfig, LocalWebhooks, wait_stop_or_wake
from loopphase.runtime.local import MARKER, LocalRuntime

log = logging.getLogger("loopphase.run")


def default_state_dir(loaded: LoadedSpec) -> Path:
    return loaded.path.parent / ".loopphase" / loaded.name


def local_zone_name() -> str:
    """The machine's IANA zone for banners that name none (falls back to UTC)."""
    link = Path("/etc/localtime")
    try:
        target = str(link.resolve())
    except OSError:
        return "UTC"
    marker = "/zoneinfo/"
    return target.split(marker, 1)[1] if marker in target else "UTC"


@dataclass
class TickReport:
    tick: int
    result: TickResult


class StateDirLost(RuntimeError):
    """The state directory vanished (or was replaced) under a live run."""


def spec_changes(old: dict[str, Any], new: dict[str, Any], prefix: str = "spec.") -> list[str]:
    """Dotted paths that differ between two wire specs, as ``path: old -> new`` lines."""
    lines: list[str] = []
    for key in sorted(set(old) | set(new), key=str):
        path = f"{prefix}{key}"
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            lines += spec_changes(a, b, f"{path}.")
        elif isinstance(a, list) and isinstance(b, list):
            lines += _list_changes(a, b, path)
        else:
            lines.append(f"{path}: {_short(a)} -> {_short(b)}")
    return lines


def _list_changes(old: list[Any], new: list[Any], path: str) -> list[str]:
    """A list's changes item by item: lists of ``{"id": ...}`` (phases) by id (added, removed,
    reordered, then each kept item's fields); others by position. Both sides were once cut to
    the same 80-character prefix, which hid what changed."""
    def ids(items: list[Any]) -> list[Any] | None:
        found = [item.get("id") for item in items if isinstance(item, dict)]
        return found if len(found) == len(items) and None not in found else None

    old_ids, new_ids = ids(old), ids(new)
    if old_ids is None or new_ids is None:
        lines = []
        for i in range(max(len(old), len(new))):
            a = old[i] if i < len(old) else None
            b = new[i] if i < len(new) else None
            if a == b:
                continue
            if isinstance(a, dict) and isinstance(b, dict):
                lines += spec_changes(a, b, f"{path}[{i}].")
            else:
                lines.append(f"{path}[{i}]: {_short(a)} -> {_short(b)}")
        return lines
    lines = [f"{path}: removed {i} (was [{old_ids.index(i)}])" for i in old_ids if i not in new_ids]
    lines += [f"{path}: added {i} at [{new_ids.index(i)}]" for i in new_ids if i not in old_ids]
    kept_old = [i for i in old_ids if i in new_ids]
    kept_new = [i for i in new_ids if i in old_ids]
    if kept_old != kept_new:
        lines.append(f"{path}: order {', '.join(map(str, kept_old))} -> {', '.join(map(str, kept_new))}")
    for i in kept_new:
        a, b = old[old_ids.index(i)], new[new_ids.index(i)]
        if a != b:
            lines += spec_changes(a, b, f"{path}[{new_ids.index(i)}].")
    return lines


def _short(value: Any, limit: int = 80) -> str:
    text = "(unset)" if value is None else redact_patterns(json.dumps(value))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def stored_spec(spec: LoopPhaseSpec) -> dict[str, Any]:
    """The spec as kept in spec.applied.json: the wire form with credentials in the URL masked."""
    wire = spec.to_wire()
    wire["repo"] = {**wire["repo"], "url": redact_patterns(wire["repo"]["url"])}
    return wire


class Runner:
    def __init__(self, loaded: LoadedSpec, state_dir: Path | None = None, *,
                 on_tick: Callable[[TickReport], None] | None = None,
                 on_message: Callable[[str], None] | None = None,
                 webhook: LocalWebhookConfig | None = None,
                 metrics: LoopMetrics | None = None) -> None:
        self.loaded = loaded
        self.spec = loaded.spec
        self.state_dir = state_dir or default_state_dir(loaded)
        self.store = StateStore(self.state_dir, spec_hint=str(loaded.path))
        self.runtime = LocalRuntime(self.spec, self.state_dir, loaded.path.parent)
        self.git = WatchedRemote(WatcherRegistry(self.state_dir / "git-cache"),
                                 self.spec.repo.url, self.spec.repo.branch)
        self.on_tick = on_tick
        self.on_message = on_message or (lambda text: log.warning("%s", text))
        self.metrics = metrics
        self.notifier = Notifier(loaded.name, LocalUrls(loaded.path.parent).resolve)
        self.tz = self.spec.time_zone or local_zone_name()
        # Runs whose state directories sit side by side (specs in one folder) share holds.
        self.hold_registry = FileHoldRegistry(self.state_dir.parent / "account-holds")
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self.webhooks = (LocalWebhooks(webhook, loaded.name, self.git, self._wake.set)
                         if webhook is not None else None)
        self.generation = 1
        self._spec_stamp = _stamp(loaded.path)
        self._bad_stamp: tuple[int, ...] | None = None
        # The last edit of the spec file that was refused (shown as Degraded/InvalidSpec, like
        # the operator's) until the file is valid again; None while it is.
        self.rejected_edit: str | None = None
        self._dir_identity: tuple[int, int] | None = None

    # -- spec edits ---------------------------------------------------------------------------

    @property
    def applied_path(self) -> Path:
        return self.state_dir / "spec.applied.json"

    def _record_applied(self) -> None:
        write_private(self.applied_path, json.dumps(
            {"generation": self.generation, "name": self.loaded.name, "spec": stored_spec(self.spec)}))

    def _resume_generation(self) -> None:
        """Continue the generation count of this state dir; an edit between runs is one more."""
        try:
            applied = json.loads(self.applied_path.read_text(encoding="utf-8"))
            generation, old = int(applied["generation"]), applied["spec"]
        except FileNotFoundError:
            self._record_applied()
            return
        except (OSError, ValueError, KeyError, TypeError) as err:
            log.warning("%s unreadable (%s): counting generations from 1", self.applied_path, err)
            self._record_applied()
            return
        self.generation = generation
        changes = spec_changes(old, stored_spec(self.spec))
        if changes:
            self.generation += 1
            self._announce(changes, "since the last run")
            self._record_applied()

    def _announce(self, changes: list[str], when: str) -> None:
        lines = [f"spec changed {when}; applying it as generation {self.generation}:"]
        lines += [f"  {change}" for change in changes]
        touched = {c.split(":", 1)[0] for c in changes}
        for role in self.spec.roles():
            prefix = f"spec.agents.{role}."
            if any(t.startswith(prefix) for t in touched) and self.runtime.record(role) is not None:
                lines.append(f"  {role} keeps running with its previous agent settings; they apply at its next "
                             "start (`loopphase run --stop` and run again to apply them now)")
        self.on_message("\n".join(lines))

    def reload_spec(self) -> bool:
        """Apply the spec file if it changed on disk; True when a new generation was applied."""
        stamp = _stamp(self.loaded.path)
        if stamp == self._spec_stamp or stamp == self._bad_stamp:
            return False
        try:
            loaded = load_spec(self.loaded.path)
            if loaded.name != self.loaded.name:
                raise SpecFileError(f"metadata.name changed from {self.loaded.name!r} to {loaded.name!r}: "
                                    "the name selects the state directory; start the new name separately")
            repo, new_repo = self.spec.repo, loaded.spec.repo
            if (repo.url, repo.branch) != (new_repo.url, new_repo.branch):
                raise SpecFileError("spec.repo.url/spec.repo.branch changed: this run's state belongs to "
                                    f"{redact_patterns(repo.url)} branch {repo.branch}; give the new "
                                    "repository its own metadata.name")
        except SpecFileError as err:
            self._bad_stamp = stamp
            self.rejected_edit = f"spec edit NOT applied (still running generation {self.generation}): {err}"
            self.on_message(self.rejected_edit)
            return False
        self._spec_stamp, self._bad_stamp = stamp, None
        if self.rejected_edit is not None:
            self.on_message("the spec file is valid again; the Degraded/InvalidSpec condition is cleared")
            self.rejected_edit = None
        changes = spec_changes(self.spec.to_wire(), loaded.spec.to_wire())
        if not changes:
            return False
        self.generation += 1
        self.loaded, self.spec = loaded, loaded.spec
        self.runtime.spec = loaded.spec
        self.tz = self.spec.time_zone or local_zone_name()
        self._announce(changes, "on disk")
        self._record_applied()
        return True

    # -- the loop -----------------------------------------------------------------------------

    def role_prompt(self, role: Role) -> str:
        source = self.spec.agent(role).prompt
        if source is None:
            return ""
        if source.inline is not None:
            return source.inline
        if source.file is not None:
            return (self.loaded.path.parent / source.file).read_text(encoding="utf-8")
        raise ValueError(
            f"{agent_field(self.spec, role)}.prompt.configMapKeyRef only works on a cluster; "
            "for `loopphase run` use prompt.inline or prompt.file"
        )

    def _approvals(self) -> list[ApprovalRequest]:
        """`loopphase approve`/`reject` requests (the core acts on each id once)."""
        out = []
        for record in self.store.read_approvals():
            try:
                out.append(ApprovalRequest(id=str(record["id"]), verdict=record["verdict"],
                                           phase=record.get("phase"), message=record.get("message", "")))
            except (KeyError, TypeError) as err:
                log.warning("ignoring a malformed line in %s: %s", self.store.approvals_path, err)
        return out

    def request_stop(self) -> None:
        self._stop.set()

    def _check_state_dir(self) -> None:
        try:
            info = os.stat(self.state_dir)
            identity = (info.st_dev, info.st_ino)
        except FileNotFoundError:
            identity = None
        if self._dir_identity is None:
            self._dir_identity = identity
        if identity is None or identity != self._dir_identity:
            raise StateDirLost(
                f"the state directory {self.state_dir} was deleted or replaced while this run was "
                "using it: stopping without starting anything (a new agent would share a working "
                f"copy with the live one). The agents still carry {MARKER}={self.runtime.run_id}/<role>; "
                f"`loopphase run {self.loaded.path} --stop` stops them"
            )

    async def tick_once(self, status: LoopPhaseStatus, now: datetime | None = None) -> TickResult:
        self._check_state_dir()
        self.reload_spec()
        now = now or datetime.now(UTC)
        started = time.monotonic()
        result = await run_tick(self.spec, status, self.runtime, self.git, now,
                                role_prompt=self.role_prompt, default_tz=self.tz,
                                generation=self.generation,
                                account_holds=self.hold_registry.others(self.loaded.name, now),
                                approvals=self._approvals())
        self.hold_registry.publish(self.loaded.name, holds.exported(self.spec, result.status, now), now)
        if self.rejected_edit is not None:
            mark_invalid_spec(status, result.status, self.rejected_edit, now)
        self._check_state_dir()
        result.status = fold(self.spec, status, result.status, self.notifier.drain())
        self._record(result)
        self.store.append_states(status, result.status, now)
        saved = result.status != status
        if saved:
            self.store.save(result.status)
        # Only what is persisted is sent (a crash before the save re-decides, after it re-sends).
        self.notifier.submit(self.spec.notify, result.status.notifications.outbox, datetime.now(UTC))
        if self.metrics is not None:
            record_tick(self.metrics, str(self.state_dir), status, result.status, result.actions,
                        result.results, result.observations, started=now,
                        finished=datetime.now(UTC), seconds=time.monotonic() - started)
            self.metrics.wrote("status", int(saved))
        return result

    def _record(self, result: TickResult) -> None:
        outcome = {id(a): (ok, detail) for a, ok, detail in result.results}
        records = []
        for action in result.actions:
            ok, detail = outcome.get(id(action), (True, ""))
            record = {
                "time": datetime.now(UTC).isoformat(),
                "action": type(action).__name__,
                "role": action.role,
                "rule": action.rule,
                "reason": action.reason,
                "ok": ok,
                "detail": detail,
            }
            if isinstance(action, EmitEvent):
                record["kind"] = action.kind
            if isinstance(action, SendText):
                record["purpose"] = action.purpose
            if hasattr(action, "mode"):
                record["mode"] = action.mode
            records.append(record)  # logged once, by the tick (controller.tick.log_result)
        self.store.append_actions(records)

    async def run(self, *, exit_on_complete: bool = True, max_ticks: int | None = None,
                  from_log: bool = False) -> LoopPhaseStatus:
        self.store.lock()
        branch_lock = BranchLock(self.spec.repo.url, self.spec.repo.branch, self.loaded.path.parent,
                                 state_dir=self.state_dir, spec=self.loaded.path)
        try:
            branch_lock.acquire()
            self._check_state_dir()
            self.store.check_binding(self.spec.repo.url, self.spec.repo.branch)
            status = self.store.repair() if from_log else self.store.load()
            status = self._void_stale_requests(status)
            self._resume_generation()
            if self.webhooks is not None:
                await self.webhooks.start()
            tick = 0
            while not self._stop.is_set():
                result = await self.tick_once(status)
                status = result.status
                tick += 1
                if self.on_tick is not None:
                    self.on_tick(TickReport(tick, result))
                if (exit_on_complete and status.completed_at is not None and not result.changed_actions
                        and not status.notifications.outbox):
                    break
                if max_ticks is not None and tick >= max_ticks:
                    break
                delay = next_tick_delay(self.spec, status, datetime.now(UTC))
                await wait_stop_or_wake(self._stop, self._wake, delay)  # a webhook wakes early
            return status
        finally:
            await self.notifier.close()
            if self.webhooks is not None:
                await self.webhooks.stop()
            branch_lock.release()
            self.store.unlock()

    def _void_stale_requests(self, status: LoopPhaseStatus) -> LoopPhaseStatus:
        """Forget the start/stop requests an earlier runner left in the status.

        ``startRequestedAt`` makes the core show the role as Starting and wait START_TIMEOUT
        (minutes) for a start to complete; ``stopRequestedAt`` holds back a repeated stop for
        STOP_RETRY. A runner that was stopped (Ctrl-C, ``--stop``, killed) completes neither,
        and this runner has issued none yet, so both are void. A start request is kept only
        while the role's recorded host is alive (it is still starting its agent in there)."""
        voided = []
        agents = {}
        for role, agent in status.agents.items():
            changes: dict[str, None] = {}
            if agent.start_requested_at is not None and self.runtime.record(role) is None:  # type: ignore[arg-type]
                changes["start_requested_at"] = None
                voided.append(f"{role}: start requested at {agent.start_requested_at.isoformat()} "
                              "(no agent host of it is alive)")
            if agent.stop_requested_at is not None:
                changes["stop_requested_at"] = None
                voided.append(f"{role}: stop requested at {agent.stop_requested_at.isoformat()}")
            agents[role] = agent.model_copy(update=changes) if changes else agent
        if not voided:
            return status
        self.on_message("requests left by an earlier runner are void (this runner re-decides them):\n"
                        + "\n".join(f"  {line}" for line in voided))
        return status.model_copy(update={"agents": agents})

    async def stop_everything(self) -> list[str]:
        stopped = await self.runtime.stop_all()
        self.hold_registry.forget(self.loaded.name)  # stopped agents hold nobody
        return stopped


def mark_invalid_spec(before: LoopPhaseStatus, after: LoopPhaseStatus, message: str,
                      now: datetime) -> None:
    """Degraded/InvalidSpec on ``after`` (the operator's condition for a spec it refuses):
    here the run goes on with the last good spec, so the phase is kept and what the core found
    degraded, if anything, follows the message. The transition time is kept from ``before``
    while the condition stays True, so an unchanged world is an unchanged status (no save)."""
    core = after.condition("Degraded")
    previous = before.condition("Degraded")
    if core is not None and core.status == "True" and core.reason != "InvalidSpec":
        message = f"{message}; {core.message}"
    since = (previous.last_transition_time if previous is not None and previous.status == "True"
             else now)
    after.conditions = [c for c in after.conditions if c.type != "Degraded"]
    after.conditions.append(Condition(type="Degraded", status="True", reason="InvalidSpec",
                                      message=message, last_transition_time=since,
                                      observed_generation=after.observed_generation))


def _stamp(path: Path) -> tuple[int, ...]:
    """What identifies one version of the spec file on disk (any change re-reads it)."""
    try:
        info = os.stat(path)
    except OSError:
        return ()
    return (info.st_mtime_ns, info.st_size, info.st_ino)

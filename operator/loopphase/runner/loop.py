"""The controller loop without a cluster: observe -> reconcile -> act -> persist, every tick."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from loopphase.api.spec import Role
from loopphase.api.status import LoopPhaseStatus
from loopphase.controller.tick import TickResult, next_tick_delay, run_tick
from loopphase.core.actions import EmitEvent, SendText
from loopphase.git import WatcherRegistry
from loopphase.git.source import WatchedRemote
from loopphase.runner.specfile import LoadedSpec
from loopphase.runner.store import StateStore
from loopphase.runner.webhook import LocalWebhookConfig, LocalWebhooks, wait_stop_or_wake
from loopphase.runtime.local import LocalRuntime

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


class Runner:
    def __init__(self, loaded: LoadedSpec, state_dir: Path | None = None, *,
                 on_tick: Callable[[TickReport], None] | None = None,
                 webhook: LocalWebhookConfig | None = None) -> None:
        self.loaded = loaded
        self.spec = loaded.spec
        self.state_dir = state_dir or default_state_dir(loaded)
        self.store = StateStore(self.state_dir)
        self.runtime = LocalRuntime(self.spec, self.state_dir, loaded.path.parent)
        self.git = WatchedRemote(WatcherRegistry(self.state_dir / "git-cache"),
                                 self.spec.repo.url, self.spec.repo.branch)
        self.on_tick = on_tick
        self.tz = self.spec.time_zone or local_zone_name()
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self.webhooks = (LocalWebhooks(webhook, loaded.name, self.git, self._wake.set)
                         if webhook is not None else None)

    def role_prompt(self, role: Role) -> str:
        source = self.spec.agent(role).prompt
        if source is None:
            return ""
        if source.inline is not None:
            return source.inline
        if source.file is not None:
            return (self.loaded.path.parent / source.file).read_text(encoding="utf-8")
        raise ValueError(
            f"agents.{role}.prompt.configMapKeyRef only works on a cluster; "
            "for `loopphase run` use prompt.inline or prompt.file"
        )

    def request_stop(self) -> None:
        self._stop.set()

    async def tick_once(self, status: LoopPhaseStatus, now: datetime | None = None) -> TickResult:
        result = await run_tick(self.spec, status, self.runtime, self.git, now or datetime.now(UTC),
                                role_prompt=self.role_prompt, default_tz=self.tz)
        self._record(result)
        if result.status != status:
            self.store.save(result.status)
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
            records.append(record)
            log.info("%s role=%s rule=%s ok=%s: %s", record["action"], action.role, action.rule, ok, action.reason)
        self.store.append_actions(records)

    async def run(self, *, exit_on_complete: bool = True, max_ticks: int | None = None) -> LoopPhaseStatus:
        self.store.lock()
        try:
            if self.webhooks is not None:
                await self.webhooks.start()
            status = self.store.load()
            tick = 0
            while not self._stop.is_set():
                result = await self.tick_once(status)
                status = result.status
                tick += 1
                if self.on_tick is not None:
                    self.on_tick(TickReport(tick, result))
                if exit_on_complete and status.completed_at is not None and not result.changed_actions:
                    break
                if max_ticks is not None and tick >= max_ticks:
                    break
                delay = next_tick_delay(self.spec, status, datetime.now(UTC))
                await wait_stop_or_wake(self._stop, self._wake, delay)  # a webhook wakes early
            return status
        finally:
            if self.webhooks is not None:
                await self.webhooks.stop()
            self.store.unlock()

    async def stop_everything(self) -> None:
        await self.runtime.stop_all()

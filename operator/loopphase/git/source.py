"""The controller tick's git source for one LoopPhase: its remote through the shared registry,
polled at the tick's cadence, or, when push webhooks are expected, only as a slow safety net."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from loopphase.core.observations import GitObservation
from loopphase.git.registry import WatcherRegistry
from loopphase.git.watcher import RemoteWatcher

DEFAULT_WEBHOOK_POLL = 60.0  # seconds: the safety-net poll while webhooks are expected


@dataclass
class WatchedRemote:
    """``observe`` for the tick (``controller.tick.GitSource``).

    Without webhooks the registry's memo age applies (one ``ls-remote`` per tick at most, shared
    by every LoopPhase on the remote). With ``webhooks`` true an ``ls-remote`` is reused for
    ``poll_interval`` seconds; a verified webhook (``watcher().hint``) makes the next observe
    ask the remote at once. Observations then carry ``webhooks_expected`` so the core can tell
    a push the poll found but no webhook announced.
    """

    registry: WatcherRegistry
    url: str
    branch: str
    env: dict[str, str] | None = None
    webhooks: bool = False
    poll_interval: float = DEFAULT_WEBHOOK_POLL

    def watcher(self) -> RemoteWatcher:
        return self.registry.get(self.url, self.branch, self.env)

    async def observe(self, cursor: str | None, paths: Sequence[str]) -> GitObservation:
        max_age = self.poll_interval if self.webhooks else None
        obs = await self.registry.observe_async(self.url, self.branch, cursor, list(paths),
                                                self.env, max_age)
        return dataclasses.replace(obs, webhooks_expected=self.webhooks)

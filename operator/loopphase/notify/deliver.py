"""Posting outbox items to webhooks in background tasks (aiohttp), never inside a tick.

The shell calls ``submit`` after it persisted the status holding the outbox, and ``drain`` at
the next tick to fold the outcomes back (``outbox.apply``). An item in flight or finished but
not yet drained is never sent twice by one process.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from loopphase.api.notify import NotifySpec, OutboxItem, WebhookSpec
from loopphase.notify.outbox import Outcome
from loopphase.outbound import scrub

log = logging.getLogger(__name__)

POST_TIMEOUT = 10.0
UrlResolver = Callable[[WebhookSpec], Awaitable[str]]


class WebhookConfigError(RuntimeError):
    """The webhook's URL cannot be had (missing file/variable/Secret, bad scheme); no retry."""


class WebhookUnavailable(RuntimeError):
    """The URL could not be read this time (e.g. the API server failed); retried."""


def slack_escape(text: str) -> str:
    """Slack's message escaping: ``&``, ``<``, ``>`` as entities, so text an agent printed
    (``<!channel>``, ``<https://evil|click>``) is shown, never a mention or a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def body(format_: str, loop: str, item: OutboxItem) -> dict[str, Any]:
    """The JSON posted: generic (every field) or Slack-compatible (``{"text": ...}``)."""
    who = f" {item.role}" if item.role else ""
    if format_ == "slack":
        phase = f" (phase {item.phase})" if item.phase else ""
        return {"text": slack_escape(f"LoopPhase {loop}: {item.kind}{who}{phase}: {scrub(item.reason)}")}
    return {
        "id": item.id, "loopphase": loop, "kind": item.kind, "role": item.role, "rule": item.rule,
        "reason": scrub(item.reason), "phase": item.phase, "time": item.time.isoformat(),
    }


def check_url(url: str, webhook: str) -> str:
    """``url`` if it is an http(s) URL with a host; else WebhookConfigError (URL not quoted)."""
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError as err:
        raise WebhookConfigError(f"webhook {webhook}: the URL does not parse") from err
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise WebhookConfigError(f"webhook {webhook}: the URL must be http:// or https:// with a host")
    return url


def _hide(text: str, url: str) -> str:
    """``text`` without the URL or its path (a Slack URL's path is its token)."""
    path = urlsplit(url).path
    for secret in (url, path if len(path) > 1 else ""):
        if secret:
            text = text.replace(secret, "<webhook url>")
    return scrub(text)


class Notifier:
    """Delivers one LoopPhase's outbox. ``loop``: its name (in bodies)."""

    def __init__(self, loop: str, resolve_url: UrlResolver, *, timeout: float = POST_TIMEOUT) -> None:
        self.loop = loop
        self.resolve_url = resolve_url
        self.timeout = timeout
        self._tasks: set[asyncio.Task[None]] = set()
        self._busy: set[tuple[int, str]] = set()
        self._done: list[Outcome] = []
        self._session: aiohttp.ClientSession | None = None

    def submit(self, spec: NotifySpec | None, outbox: list[OutboxItem], now: datetime) -> int:
        """Start a delivery for every due item not already in flight; returns how many."""
        hooks = {w.name: w for w in (spec.webhooks if spec is not None else [])}
        started = 0
        for item in outbox:
            key = (item.id, item.webhook)
            if key in self._busy or (item.next_attempt_at is not None and item.next_attempt_at > now):
                continue
            self._busy.add(key)
            hook = hooks.get(item.webhook)
            if hook is None:
                self._done.append(Outcome(item.id, item.webhook, False, now,
                                          f"webhook {item.webhook} is no longer in spec.notify", final=True))
                continue
            task = asyncio.create_task(self._deliver(hook, item))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            started += 1
        return started

    def drain(self) -> list[Outcome]:
        """Outcomes finished since the last drain (their items may be submitted again after)."""
        done, self._done = self._done, []
        for outcome in done:
            self._busy.discard((outcome.id, outcome.webhook))
        return done

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def _deliver(self, hook: WebhookSpec, item: OutboxItem) -> None:
        url = ""
        try:
            url = check_url(await self.resolve_url(hook), hook.name)
            outcome = await self._post(hook, item, url)
        except WebhookConfigError as err:
            outcome = Outcome(item.id, hook.name, False, datetime.now(UTC), _hide(str(err), url), final=True)
        except (aiohttp.ClientError, TimeoutError, OSError, WebhookUnavailable) as err:
            outcome = Outcome(item.id, hook.name, False, datetime.now(UTC),
                              _hide(f"{type(err).__name__}: {err}", url))
        level = logging.INFO if outcome.ok else logging.WARNING
        log.log(level, "notify %s #%d %s -> %s %s", hook.name, item.id, item.kind,
                "delivered" if outcome.ok else "failed", outcome.error)
        self._done.append(outcome)

    async def _post(self, hook: WebhookSpec, item: OutboxItem, url: str) -> Outcome:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        async with self._session.post(url, json=body(hook.format, self.loop, item),
                                      allow_redirects=False) as response:
            await response.read()
            ok = 200 <= response.status < 300
            return Outcome(item.id, hook.name, ok, datetime.now(UTC), "" if ok else f"HTTP {response.status}")

    async def close(self) -> None:
        """Cancel deliveries in flight (their items stay in the outbox) and close the session."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

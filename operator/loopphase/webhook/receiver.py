"""The webhook HTTP endpoint (aiohttp): verify, de-duplicate, match, wake.

``POST /webhook`` (also ``/``): the flow for each request, each refusal counted and logged:

1. body over ``max_body`` bytes -> 413 (read no further);
2. no known event header -> 400; no signature/token -> 401;
3. the credential is checked in constant time against every subscribed secret (each distinct
   secret once); none matches -> 403;
4. delivery id (or, without one, the body's hash) seen before -> 409;
5. ``ping`` -> 200; any event but a branch push -> 202 ignored; unreadable payload -> 400;
6. the LoopPhases whose secret verified and whose repository (``repo_key``) and branch match
   are notified (``Subscription.on_push``) -> 202; none -> 202 unmatched.

The payload only decides whom to wake: the woken LoopPhase reads the remote itself.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import web

from loopphase.webhook.counters import WebhookCounters
from loopphase.webhook.providers import detect, push_event
from loopphase.webhook.replay import ReplayGuard
from loopphase.webhook.urls import repo_key

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024  # GitHub caps push payloads at 25 MB, but a push hint needs a few KB
READ_CHUNK = 64 * 1024


@dataclass(frozen=True)
class PushNotice:
    """What a subscriber is told: a verified push to its remote and branch (a hint only)."""

    provider: str
    delivery: str
    branch: str
    after: str | None  # the sha the payload claims; the observe reads the remote regardless
    received_at: datetime


@dataclass(frozen=True)
class Subscription:
    """A LoopPhase listening for pushes to (``url``, ``branch``) signed with ``secret``."""

    key: str  # who: "namespace/name" on a cluster, the spec name locally
    url: str
    branch: str
    secret: bytes
    on_push: Callable[[PushNotice], None]

    @property
    def repo(self) -> str:
        return repo_key(self.url)


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6, ``:PORT`` for every address) -> (host, port).
    Raises ValueError naming the expected form."""
    host, sep, port = value.strip().rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"webhook listen address {value!r} must be HOST:PORT, e.g. 127.0.0.1:9797")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


class Receiver:
    """The endpoint plus its subscriptions, replay window and counters.

    Subscriptions change at any time (a LoopPhase's tick re-subscribes with its current spec
    and secret); ``on_push`` callbacks run in the event loop and must not block.
    """

    def __init__(self, *, max_body: int = MAX_BODY, replay_window: int = 4096,
                 path: str = "/webhook") -> None:
        self.max_body = max_body
        self.path = path
        self.counters = WebhookCounters()
        self.replay = ReplayGuard(replay_window)
        self._subs: dict[str, Subscription] = {}
        self._runner: web.AppRunner | None = None
        self.address: tuple[str, int] | None = None

    # -- subscriptions ------------------------------------------------------------------------

    def subscribe(self, sub: Subscription) -> None:
        if not sub.secret:
            raise ValueError(f"{sub.key}: the webhook secret is empty")
        self._subs[sub.key] = sub

    def unsubscribe(self, key: str) -> None:
        self._subs.pop(key, None)

    def subscriptions(self) -> list[Subscription]:
        return list(self._subs.values())

    # -- HTTP ---------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.max_body)
        app.router.add_post(self.path, self.handle)
        app.router.add_post("/", self.handle)
        return app

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Listen on ``host:port`` (port 0: any free port); returns the bound address."""
        runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        bound = runner.addresses[0] if runner.addresses else (host, port)  # port 0 -> real port
        self.address = (str(bound[0]), int(bound[1]))
        log.info("webhook receiver listening on http://%s:%d%s", *self.address, self.path)
        return self.address

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def url(self) -> str:
        if self.address is None:
            raise RuntimeError("the receiver is not listening")
        host, port = self.address
        host = "127.0.0.1" if host in {"0.0.0.0", "::"} else host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}{self.path}"

    def _refuse(self, counter: str, status: int, message: str, request: web.Request) -> web.Response:
        self.counters.add(counter)
        log.warning("webhook refused (%d %s) from %s: %s", status, counter,
                    request.remote or "?", message)
        return web.json_response({"error": message}, status=status)

    async def _read(self, request: web.Request) -> bytes | None:
        """The body, or None when it is over the limit (never reads more than limit + 1)."""
        if request.content_length is not None and request.content_length > self.max_body:
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = await request.content.read(READ_CHUNK)
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)

    async def handle(self, request: web.Request) -> web.Response:
        self.counters.add("received")
        body = await self._read(request)
        if body is None:
            return self._refuse("too_large", 413, f"body over {self.max_body} bytes", request)
        provider = detect(request.headers)
        if provider is None:
            return self._refuse("bad_request", 400, "not a push webhook: no X-GitHub-Event, "
                                "X-Gitlab-Event, X-Gitea-Event or X-Forgejo-Event header", request)
        credential = provider.credential(request.headers)
        if not credential:
            return self._refuse("unauthenticated", 401, f"{provider.name} webhook without a "
                                "signature or token header", request)
        subs = list(self._subs.values())
        verified: set[bytes] = set()
        for secret in {s.secret for s in subs}:
            if provider.verify(credential, body, secret):
                verified.add(secret)
        if not verified:
            return self._refuse("forbidden", 403, f"{provider.name} signature/token matches no "
                                "configured webhook secret", request)
        delivery = provider.delivery(request.headers) or "sha256:" + hashlib.sha256(body).hexdigest()
        if self.replay.seen(f"{provider.name}:{delivery}"):
            return self._refuse("replayed", 409, f"delivery {delivery} was already processed",
                                request)
        if provider.is_ping(request.headers):
            self.counters.add("pings")
            return web.json_response({"result": "pong"})
        if not provider.is_push(request.headers):
            self.counters.add("ignored")
            return web.json_response({"result": "ignored", "reason": "not a push event"},
                                     status=202)
        try:
            event = push_event(json.loads(body))
        except (ValueError, UnicodeDecodeError) as err:
            return self._refuse("bad_request", 400, f"unreadable push payload: {err}", request)
        if event.branch is None:
            self.counters.add("ignored")
            return web.json_response({"result": "ignored", "reason": "not a branch"}, status=202)
        keys = {repo_key(url) for url in event.urls}
        matched = [s for s in subs if s.secret in verified and s.branch == event.branch
                   and s.repo in keys]
        if not matched:
            self.counters.add("unmatched")
            log.info("webhook %s %s: no LoopPhase watches %s branch %s", provider.name, delivery,
                     sorted(keys), event.branch)
            return web.json_response({"result": "unmatched", "notified": 0}, status=202)
        notice = PushNotice(provider=provider.name, delivery=delivery, branch=event.branch,
                            after=event.after, received_at=datetime.now(UTC))
        for sub in matched:
            try:
                sub.on_push(notice)
            except Exception:  # one subscriber's failure must not starve the others
                log.exception("webhook subscriber %s failed", sub.key)
        self.counters.add("accepted")
        self.counters.add("notified", len(matched))
        log.info("webhook %s %s: push to %s %s (%s) -> observe %s", provider.name, delivery,
                 sorted(keys)[0], event.branch, (event.after or "?")[:12],
                 ", ".join(s.key for s in matched))
        return web.json_response({"result": "accepted", "notified": len(matched)}, status=202)

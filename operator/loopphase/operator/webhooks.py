"""The operator's push-webhook receiver: which LoopPhase a verified push wakes, and how.

One ``Receiver`` (``loopphase.webhook``) listens on ``--webhook-listen`` (default
``0.0.0.0:9797``; the Deployment's ``webhook`` port behind a Service/Ingress). Each LoopPhase
tick with ``spec.repo.webhook.secretRef`` re-subscribes it with its remote, branch and the
secret read from that Secret (through the 10 s read cache, so a rotated secret is picked up).
A verified push to that remote and branch hints the shared git watcher (its next observe asks
the remote) and wakes the LoopPhase's daemon at once; the remote is otherwise polled every
``repo.webhook.pollInterval``. Problems (no receiver, no secretRef, Secret or key missing) are
Warning Events, given once per LoopPhase and problem, and that LoopPhase polls at its tick.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from collections.abc import Callable
from typing import Any

from loopphase.api.spec import LoopPhaseSpec
from loopphase.git.source import WatchedRemote
from loopphase.operator.kubeapi import KubeApi, core_ref
from loopphase.operator.read_cache import ReadCache, cached_get
from loopphase.webhook import PushNotice, Receiver, Subscription

log = logging.getLogger(__name__)

DEFAULT_LISTEN = "0.0.0.0:9797"
WarnFn = Callable[[str, str], None]  # (reason, message): a Warning Event on the LoopPhase


class OperatorWebhooks:
    """The receiver, and per LoopPhase (by uid) its wake-up event and subscription."""

    def __init__(self, listen: tuple[str, int] | None) -> None:
        self.listen = listen
        self.receiver = Receiver()
        self._wake: dict[str, asyncio.Event] = {}
        self._warned: dict[str, set[str]] = {}

    @property
    def enabled(self) -> bool:
        return self.listen is not None

    async def start(self) -> None:
        if self.listen is not None and self.receiver.address is None:
            await self.receiver.start(*self.listen)

    async def stop(self) -> None:
        await self.receiver.stop()
        self.receiver.address = None

    def wake_event(self, uid: str) -> asyncio.Event:
        """Set when a verified push for this LoopPhase arrives (the daemon clears it)."""
        return self._wake.setdefault(uid, asyncio.Event())

    def forget(self, uid: str) -> None:
        self.receiver.unsubscribe(uid)
        self._wake.pop(uid, None)
        self._warned.pop(uid, None)

    def _warn(self, uid: str, reason: str, message: str, warn: WarnFn | None) -> None:
        given = self._warned.setdefault(uid, set())
        if reason in given:
            return
        given.add(reason)
        log.warning("%s", message)
        if warn is not None:
            warn(reason, message)

    async def configure(
        self, api: KubeApi, reads: ReadCache | None, namespace: str, name: str, uid: str,
        spec: LoopPhaseSpec, source: WatchedRemote, warn: WarnFn | None = None,
    ) -> bool:
        """Subscribe this LoopPhase when its webhook is usable and make ``source`` poll slowly;
        otherwise unsubscribe it and leave ``source`` polling at the tick. True = subscribed."""
        hook = spec.repo.webhook
        secret = None
        if hook is not None:
            secret = await self._secret(api, reads, namespace, name, uid, spec, warn)
        if secret is None:
            self.receiver.unsubscribe(uid)
            source.webhooks = False
            return False
        assert hook is not None
        self._warned.pop(uid, None)  # a fixed problem is warned again if it comes back
        wake = self.wake_event(uid)

        def on_push(notice: PushNotice) -> None:
            source.watcher().hint(notice.received_at, notice.after)
            wake.set()

        self.receiver.subscribe(Subscription(key=uid, url=spec.repo.url, branch=spec.repo.branch,
                                             secret=secret, on_push=on_push))
        source.webhooks = True
        source.poll_interval = hook.poll_interval
        return True

    async def _secret(
        self, api: KubeApi, reads: ReadCache | None, namespace: str, name: str, uid: str,
        spec: LoopPhaseSpec, warn: WarnFn | None,
    ) -> bytes | None:
        hook = spec.repo.webhook
        assert hook is not None
        where = f"LoopPhase {namespace}/{name}"
        if not self.enabled:
            self._warn(uid, "WebhookReceiverDisabled",
                       f"{where}: spec.repo.webhook is set but the operator runs without a "
                       "webhook receiver (--webhook-listen); polling every signalInterval", warn)
            return None
        ref = hook.secret_ref
        if ref is None:
            self._warn(uid, "WebhookSecretMissing",
                       f"{where}: spec.repo.webhook.secretRef is required on a cluster "
                       "(secretFile is for `loopphase run`); polling every signalInterval", warn)
            return None
        obj: dict[str, Any] | None = await cached_get(
            api, core_ref(namespace, "secrets", ref.name), reads)
        raw = ((obj or {}).get("data") or {}).get(ref.key)
        if obj is None or raw is None:
            what = "does not exist" if obj is None else f"has no key {ref.key!r}"
            self._warn(uid, "WebhookSecretMissing",
                       f"{where}: Secret {namespace}/{ref.name} (spec.repo.webhook.secretRef) "
                       f"{what}; create it with the webhook secret under key {ref.key!r}; "
                       "polling every signalInterval until then", warn)
            return None
        try:
            secret = base64.b64decode(raw, validate=True).strip()
        except (binascii.Error, ValueError):
            secret = b""
        if not secret:
            self._warn(uid, "WebhookSecretMissing",
                       f"{where}: Secret {namespace}/{ref.name} key {ref.key!r} is empty or not "
                       "base64; put the webhook secret there", warn)
            return None
        return secret


async def sleep_or_wake(stopped: Any, wake: asyncio.Event, delay: float) -> None:
    """Wait ``delay`` seconds, or until the daemon is stopped or a webhook wakes it; clears
    ``wake`` (a push during the next tick is kept for the wait after it)."""
    async def stop_wait() -> None:
        await stopped.wait(delay)

    waiters = [asyncio.ensure_future(stop_wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        wake.clear()

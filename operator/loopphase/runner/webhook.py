"""Push webhooks for `loopphase run`: a receiver on a local address, wired to the run's remote.

``loopphase run spec.yaml --webhook-listen 127.0.0.1:9797`` starts the receiver; a verified
push to the spec's repository and branch drops the watcher's memoised ``ls-remote`` and wakes
the loop at once, and the remote is otherwise polled only every ``repo.webhook.pollInterval``
(60 s by default) as the safety net. ``loopphase hook install`` makes a bare repository send
such webhooks from its ``post-receive`` hook.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from loopphase.git.source import DEFAULT_WEBHOOK_POLL, WatchedRemote
from loopphase.runner.specfile import LoadedSpec
from loopphase.webhook import PushNotice, Receiver, Subscription, parse_listen

log = logging.getLogger("loopphase.run.webhook")

SECRET_ENV = "LOOPPHASE_WEBHOOK_SECRET"


class WebhookConfigError(ValueError):
    """The webhook options are unusable; the message names the option and the fix."""


@dataclass(frozen=True)
class LocalWebhookConfig:
    """Where the receiver listens, the secret it checks, and the safety-net poll (seconds)."""

    host: str
    port: int
    secret: bytes
    poll_interval: float = DEFAULT_WEBHOOK_POLL


def read_secret(path: Path, what: str) -> bytes:
    """The secret in ``path`` without surrounding whitespace; raises WebhookConfigError."""
    try:
        secret = path.read_bytes().strip()
    except OSError as err:
        raise WebhookConfigError(f"{what}: cannot read {path}: {err.strerror}") from err
    if not secret:
        raise WebhookConfigError(f"{what}: {path} is empty; put the webhook secret in it")
    return secret


def resolve_config(
    loaded: LoadedSpec, listen: str | None, secret_file: Path | None,
    env: dict[str, str] | None = None,
) -> LocalWebhookConfig | None:
    """The receiver settings from the command line and the spec (None: no receiver).

    Secret, first found: ``--webhook-secret-file``, ``repo.webhook.secretFile`` (relative to the
    spec file), ``$LOOPPHASE_WEBHOOK_SECRET``."""
    spec_hook = loaded.spec.repo.webhook
    if listen is None:
        if spec_hook is not None:
            log.warning("spec.repo.webhook is set but no --webhook-listen was given: no receiver, "
                        "the remote is polled every signalInterval")
        return None
    try:
        host, port = parse_listen(listen)
    except ValueError as err:
        raise WebhookConfigError(f"--webhook-listen: {err}") from err
    environ = os.environ if env is None else env
    if secret_file is not None:
        secret = read_secret(secret_file, "--webhook-secret-file")
    elif spec_hook is not None and spec_hook.secret_file is not None:
        secret = read_secret(loaded.path.parent / spec_hook.secret_file, "spec.repo.webhook.secretFile")
    elif environ.get(SECRET_ENV, "").strip():
        secret = environ[SECRET_ENV].strip().encode()
    else:
        raise WebhookConfigError(
            "--webhook-listen needs a secret: give --webhook-secret-file FILE, set "
            f"spec.repo.webhook.secretFile in the spec, or export {SECRET_ENV}"
        )
    poll = spec_hook.poll_interval if spec_hook is not None else DEFAULT_WEBHOOK_POLL
    return LocalWebhookConfig(host=host, port=port, secret=secret, poll_interval=poll)


class LocalWebhooks:
    """One run's receiver: subscribes the run's remote and wakes the loop on a verified push."""

    def __init__(self, config: LocalWebhookConfig, name: str, git: WatchedRemote,
                 wake: Callable[[], None]) -> None:
        self.config = config
        self.name = name
        self.git = git
        self.wake = wake
        self.receiver = Receiver()
        self.notices: deque[PushNotice] = deque(maxlen=1000)  # the latest, for `loopphase bench`

    async def start(self) -> str:
        """Listen, subscribe, slow the poll down; returns the URL to give the git host.
        Idempotent: a test may start it (to learn the port) before ``Runner.run`` does."""
        if self.receiver.address is not None:
            return self.receiver.url()
        await self.receiver.start(self.config.host, self.config.port)
        self.receiver.subscribe(Subscription(
            key=self.name, url=self.git.url, branch=self.git.branch, secret=self.config.secret,
            on_push=self._on_push,
        ))
        self.git.webhooks = True
        self.git.poll_interval = self.config.poll_interval
        url = self.receiver.url()
        log.info("webhooks for %s branch %s at %s; safety-net poll every %.0fs",
                 self.git.url, self.git.branch, url, self.config.poll_interval)
        return url

    def _on_push(self, notice: PushNotice) -> None:
        self.notices.append(notice)
        self.git.watcher().hint(notice.received_at, notice.after)
        self.wake()

    async def stop(self) -> None:
        self.git.webhooks = False
        await self.receiver.stop()
        self.receiver.address = None


async def wait_stop_or_wake(stop: asyncio.Event, wake: asyncio.Event, timeout: float) -> None:
    """Return after ``timeout`` seconds, or as soon as ``stop`` or ``wake`` is set; clears
    ``wake`` (a wake during the tick that follows is kept for the next wait)."""
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        wake.clear()

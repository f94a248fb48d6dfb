"""A real webhook receiver on loopback (aiohttp, in its own thread and event loop)."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from typing import Any

from aiohttp import web


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Receiver:
    """Answers ``fail_first`` requests with 500 (the first held until ``release`` when
    ``hold_first``), then 200. ``requests``: (path, body, status answered)."""

    def __init__(self, port: int, *, fail_first: int = 0, hold_first: bool = False) -> None:
        self.port = port
        self.fail_first = fail_first
        self.hold_first = hold_first
        self.requests: list[tuple[str, dict[str, Any], int]] = []
        self.first_arrived = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        payload = json.loads(await request.text())
        with self._lock:
            index = len(self.requests)
            status = 500 if index < self.fail_first else 200
            self.requests.append((request.path, payload, status))
        if index == 0:
            self.first_arrived.set()
            if self.hold_first:
                await asyncio.to_thread(self.release.wait, 30)
        return web.Response(status=status, text="ok" if status == 200 else "try later")

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        self._loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port).start())
        self._ready.set()
        self._loop.run_forever()

    def start(self) -> Receiver:
        self._thread.start()
        assert self._ready.wait(10), "receiver did not start"
        return self

    def stop(self) -> None:
        self.release.set()
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def delivered(self) -> list[dict[str, Any]]:
        with self._lock:
            return [body for _, body, status in self.requests if status == 200]

"""Run the real kopf operator (our registry) in-process against kmock, plus small helpers."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import kopf
from loopphase.operator.context import OperatorContext
from loopphase.operator.handlers import build_registry
from loopphase.operator.kubeapi import configuration_for
from loopphase.operator.peering import PeeringTarget
from loopphase.operator.settings import configure
from loopphase.runtime import k8s_objects as ko
from loopphase.shim.protocol import ShimState

NS = "team-a"  # the namespace the harness's operator serves


class FakeShims:
    """Shim clients answering from a per-URL table (the 'agents' of the stand-in pods)."""

    def __init__(self) -> None:
        self.panes: dict[str, str] = {}
        self.sent: list[tuple[str, str]] = []

    def __call__(self, url: str, token: str, timeout: float) -> FakeShims.Client:
        return FakeShims.Client(self, url)

    class Client:
        def __init__(self, owner: FakeShims, url: str) -> None:
            self.owner, self.url = owner, url

        async def state(self) -> ShimState:
            pane = self.owner.panes.get(self.url, "⠋ Working… (esc to interrupt)")
            return ShimState(version="test", role="builder", backend="sim", alive=True, pid=42,
                             started_at=datetime(2026, 1, 1, tzinfo=UTC), pane=pane)

        async def send(self, text: str) -> dict[str, Any]:
            self.owner.sent.append((self.url, text))
            return {"ok": True}

        async def restart(self, *args: Any) -> dict[str, Any]:
            return {"mode": args[0]}

        async def stop(self) -> None:
            return None


class CountingShimFactory:
    """Wraps a context's shim factory and counts the shim clients it makes: one per shim call,
    so each tick's observe adds one per running pod (a tick counter that needs no pod GETs)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.made: list[str] = []

    def __call__(self, url: str, token: str, timeout: float) -> Any:
        self.made.append(url)
        return self.inner(url, token, timeout)

    def count(self, url_part: str = "") -> int:
        return sum(1 for url in self.made if url_part in url)

    async def aclose(self) -> None:
        closer = getattr(self.inner, "aclose", None)
        if closer is not None:
            await closer()


def make_context(api: Any, shims: FakeShims, tmp: Path) -> OperatorContext:
    ctx = OperatorContext(pod_settings=ko.PodSettings(shim_port=8790), git_cache=tmp / "git-cache",
                          shim_factory=shims, delete_timeout=5.0)
    return ctx


async def start_operator(
    kmock: Any, ctx: OperatorContext, *, peering_priority: int | None = None,
    peering_lifetime: int = 60,
) -> tuple[asyncio.Event, asyncio.Task[Any]]:
    """kopf with our registry, running; returns (stop flag, task). Standalone unless
    ``peering_priority`` is given (then mandatory peering on the namespaced KopfPeering
    ``loopphase``, as ``loopphase operator -n`` runs: created by the operator at start-up
    unless it exists)."""
    server = str(kmock.url).rstrip("/")
    standalone = peering_priority is None
    registry = build_registry(ctx, login=lambda **_: kopf.ConnectionInfo(server=server),
                              client_config=lambda: configuration_for(server),
                              peering=None if standalone else PeeringTarget("loopphase", (NS,)))
    settings = configure(kopf.OperatorSettings(), standalone=standalone,
                         priority=peering_priority or 0)
    settings.peering.lifetime = peering_lifetime
    settings.posting.level = 0
    # kmock 0.8 answers 500 to GET /api/v1/namespaces (a cluster-scoped list whose plural is
    # "namespaces" trips its URL parser), so kopf must not scan namespaces: with scanning
    # disabled it takes the listed namespace names as given.
    settings.scanning.disabled = True
    settings.watching.server_timeout = 5
    settings.watching.client_timeout = 10
    stop = asyncio.Event()
    ready = asyncio.Event()
    task = asyncio.create_task(kopf.operator(
        registry=registry, settings=settings, standalone=standalone, namespaces=[NS],
        peering_name=None if standalone else settings.peering.name,
        stop_flag=stop, ready_flag=ready,
    ))
    await asyncio.wait_for(ready.wait(), timeout=10)
    return stop, task


@contextlib.asynccontextmanager
async def running_operator(
    kmock: Any, ctx: OperatorContext, *, peering_priority: int | None = None,
    peering_lifetime: int = 60,
) -> AsyncIterator[None]:
    """``start_operator`` for the duration of a block, stopped gracefully at its end."""
    stop, task = await start_operator(kmock, ctx, peering_priority=peering_priority,
                                      peering_lifetime=peering_lifetime)
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=20)


async def eventually(check: Callable[[], Awaitable[Any] | Any], timeout: float = 15.0) -> Any:
    """Wait until ``check()`` returns a truthy value (re-checked as the world changes)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: Any = None
    while loop.time() < deadline:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")


def git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          timeout=30).stdout


def bare_repo(tmp: Path) -> tuple[Path, Path]:
    origin, work = tmp / "origin.git", tmp / "seed"
    git("init", "-q", "--bare", "-b", "main", str(origin))
    git("init", "-q", "-b", "main", str(work))
    git("config", "user.email", "t@t", cwd=work)
    git("config", "user.name", "t", cwd=work)
    (work / "PLAN-1.md").write_text("plan 1\n")
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "init", cwd=work)
    git("push", "-q", str(origin), "main", cwd=work)
    return origin, work


def push_file(work: Path, origin: Path, path: str, text: str, subject: str) -> None:
    target = work / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", subject, cwd=work)
    git("push", "-q", str(origin), "main", cwd=work)


def answer_with(kmock: Any, monkeypatch: Any, matches: Callable[[Any], bool], code: int,
                reason: str, message: str) -> list[Any]:
    """Answer every request that ``matches`` with an API ``Status`` error, storing nothing (as
    a real API server refuses: a missing kind, a forbidden write, an admission plugin).

    kmock's own reactions run after the emulator stored the mutation, so this wraps its request
    handler instead (on the slotted class, for this emulator instance only; monkeypatch
    restores it). Returns the list of refused requests (it grows)."""
    import aiohttp.web

    cls = type(kmock)
    original = cls._handle
    hits: list[Any] = []

    async def handle(self: Any, request: Any) -> aiohttp.web.StreamResponse:
        if self is kmock and matches(request):
            hits.append(request)
            return aiohttp.web.json_response(
                {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason,
                 "code": code, "message": message}, status=code)
        return await original(self, request)

    monkeypatch.setattr(cls, "_handle", handle)
    return hits

"""Run the real kopf operator (our registry) in-process against kmock, plus small helpers."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import subprocess
import threading
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


class ReplicaThread:
    """One more operator replica, in its own thread and event loop, as a replica is its own
    process (pod) in a cluster.

    Why not a second ``start_operator`` in the test's loop: when ``kopf.operator()`` exits
    (stopped or cancelled) it cancels every task created in its event loop after it started,
    its own or not (``kopf._core.reactor.running.run_tasks``: "every task created after the
    operator's startup is assumed to be a task or a sub-task of the operator ... all tasks are
    forcibly cancelled"; kopf's docs, "Embedding", give kopf an event loop of its own). Two
    replicas in one loop are therefore not independent: a replica that stops while the other
    one resumes cancels the other's freshly spawned daemon, and a daemon task cancelled before
    its first step never runs kopf's clean-up (``daemons._runner``'s ``finally``), so kopf keeps
    it as running and never spawns it again (issue 14's failover flake: the standby resumed,
    ran on.resume, and never ticked).

    ``crash()`` freezes the replica like a killed pod (nothing of it runs any more: no peering
    goodbye, so the others resume only when its peering record expires); ``stop()`` stops it
    gracefully (kopf says goodbye: the others resume at once). ``close()`` releases a crashed
    replica's loop (its leftover tasks are cancelled there) and must run while the emulator
    still serves."""

    def __init__(self, kmock: Any, ctx: OperatorContext, *, peering_priority: int | None = None,
                 peering_lifetime: int = 60) -> None:
        self.kmock, self.ctx = kmock, ctx
        self.priority, self.lifetime = peering_priority, peering_lifetime
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._serve, name="operator-replica", daemon=True)
        self.stop_flag: asyncio.Event | None = None
        self.task: asyncio.Task[Any] | None = None

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    async def _call(self, coro: Any, timeout: float) -> Any:
        """Run ``coro`` in the replica's loop; await its result from the caller's loop."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return await asyncio.wait_for(asyncio.wrap_future(future), timeout)

    async def start(self) -> None:
        self.thread.start()
        self.stop_flag, self.task = await self._call(start_operator(
            self.kmock, self.ctx, peering_priority=self.priority,
            peering_lifetime=self.lifetime), timeout=20)

    async def stop(self, timeout: float = 20) -> None:
        """A graceful stop (SIGTERM): kopf's clean-up runs, the peering record goes."""
        assert self.stop_flag is not None and self.task is not None
        task, ended = self.task, concurrent.futures.Future[None]()
        # A done-callback, not a waiting task in the replica's loop: kopf's exit would cancel
        # that task too (it was created after kopf started).
        self.loop.call_soon_threadsafe(
            lambda: task.add_done_callback(lambda _: ended.set_result(None)))
        self.loop.call_soon_threadsafe(self.stop_flag.set)
        await asyncio.wait_for(asyncio.wrap_future(ended), timeout)
        await self.close()

    def crash(self) -> None:
        """A hard kill (SIGKILL): the replica's loop stops where it is; nothing more runs."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        assert not self.thread.is_alive(), "the replica's event loop did not stop"

    async def close(self, timeout: float = 10) -> None:
        """Stop the loop (if running), cancel what is left in it, and close it."""
        if self.loop.is_closed():
            return
        if self.thread.is_alive():
            self.crash()
        await asyncio.to_thread(self._drain, timeout)

    def _drain(self, timeout: float) -> None:
        log = logging.getLogger(__name__)

        async def cancel_rest() -> None:
            # Whatever kopf left (cancelling spawns stoppers): until nothing is left.
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while loop.time() < deadline:
                tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
                if not tasks:
                    return
                for task in tasks:
                    task.cancel()
                await asyncio.wait(tasks, timeout=max(0.0, deadline - loop.time()))
            left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            log.warning("replica loop: %d task(s) did not finish on cancel: %s", len(left),
                        sorted(t.get_name() for t in left))

        asyncio.set_event_loop(self.loop)
        try:
            if self.task is not None and not self.task.done():
                # kopf's own shutdown first, awaited as the operator task itself: a new task
                # waiting for it would be cancelled by that shutdown (see the class docstring).
                self.task.cancel()
                timer = self.loop.call_later(timeout, self.loop.stop)
                try:
                    self.loop.run_until_complete(self.task)
                except asyncio.CancelledError:
                    pass  # the cancellation asked for above
                except RuntimeError as err:  # the timer stopped the loop first
                    log.warning("replica loop: kopf did not stop within %ss: %s", timeout, err)
                finally:
                    timer.cancel()
            self.loop.run_until_complete(cancel_rest())
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.run_until_complete(self.loop.shutdown_default_executor())
        finally:
            self.loop.close()


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

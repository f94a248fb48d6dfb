"""KubeApi on the official kubernetes client, against a real HTTP server on loopback that
records what it is sent: field manager, User-Agent, merge patches, timeouts, error shapes, and
the bounded worker pool."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from loopphase.operator.kubeapi import (
    FIELD_MANAGER,
    USER_AGENT,
    KubeApi,
    KubeApiError,
    configuration_for,
    core_ref,
    custom_ref,
)

FORBIDDEN = ('pods "demo-builder" is forbidden: cannot set blockOwnerDeletion if an '
             "ownerReference refers to a resource you can't set finalizers on")


class Recorder:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.delay = 0.0
        self.in_flight = 0
        self.peak = 0
        self.lock = threading.Lock()


@pytest.fixture()
def server() -> Iterator[tuple[str, Recorder]]:
    rec = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def _do(self) -> None:
            with rec.lock:
                rec.in_flight += 1
                rec.peak = max(rec.peak, rec.in_flight)
            try:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                rec.requests.append({"method": self.command, "path": self.path,
                                     "headers": dict(self.headers),
                                     "body": json.loads(body) if body else None})
                if rec.delay:
                    time.sleep(rec.delay)
                if "/missing" in self.path:
                    code, out = 404, {"kind": "Status", "reason": "NotFound", "code": 404,
                                      "message": "pods \"missing\" not found"}
                elif self.command == "POST" and "/pods" in self.path:
                    code, out = 403, {"kind": "Status", "reason": "Forbidden", "code": 403,
                                      "message": FORBIDDEN}
                else:
                    code, out = 200, {"metadata": {"name": "x"}, "echo": self.path}
                data = json.dumps(out).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except BrokenPipeError:
                pass  # the client gave up (the timeout test): nothing to answer
            finally:
                with rec.lock:
                    rec.in_flight -= 1

        do_GET = do_POST = do_PATCH = do_DELETE = _do

        def log_message(self, *args: Any) -> None:
            return None

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}", rec
    finally:
        httpd.shutdown()
        httpd.server_close()


async def test_writes_carry_field_manager_user_agent_and_merge_patches(
    server: tuple[str, Recorder],
) -> None:
    url, rec = server
    api = KubeApi(configuration_for(url), timeout=5.0)
    try:
        await api.create(core_ref("ns", "configmaps"), {"metadata": {"name": "cm"}})
        await api.merge_patch(core_ref("ns", "configmaps", "cm"), {"data": {"gone": None}})
        await api.merge_patch(custom_ref("loopphase.dev", "v1alpha1", "ns", "loopphases", "lp",
                                         "status"), {"status": {"x": 1}})
        await api.create(custom_ref("kopf.dev", "v1", None, "clusterkopfpeerings"),
                         {"metadata": {"name": "loopphase"}})
        await api.create(custom_ref("networking.k8s.io", "v1", "ns", "networkpolicies"), {})
        assert await api.get(core_ref("ns", "secrets", "s")) == {
            "metadata": {"name": "x"}, "echo": "/api/v1/namespaces/ns/secrets/s"}
        assert await api.delete(core_ref("ns", "pods", "p")) is True
    finally:
        await api.close()
    paths = [(r["method"], r["path"].split("?")[0]) for r in rec.requests]
    assert paths == [
        ("POST", "/api/v1/namespaces/ns/configmaps"),
        ("PATCH", "/api/v1/namespaces/ns/configmaps/cm"),
        ("PATCH", "/apis/loopphase.dev/v1alpha1/namespaces/ns/loopphases/lp/status"),
        ("POST", "/apis/kopf.dev/v1/clusterkopfpeerings"),
        ("POST", "/apis/networking.k8s.io/v1/namespaces/ns/networkpolicies"),
        ("GET", "/api/v1/namespaces/ns/secrets/s"),
        ("DELETE", "/api/v1/namespaces/ns/pods/p"),
    ]
    writes = [r for r in rec.requests if r["method"] in ("POST", "PATCH")]
    assert all(f"fieldManager={FIELD_MANAGER}" in r["path"] for r in writes)
    assert all(r["headers"]["User-Agent"] == USER_AGENT for r in rec.requests)
    assert USER_AGENT.startswith("loopphase-operator/")
    patches = [r for r in rec.requests if r["method"] == "PATCH"]
    assert {r["headers"]["Content-Type"] for r in patches} == {"application/merge-patch+json"}
    assert patches[0]["body"] == {"data": {"gone": None}}  # null = delete (RFC 7386)


async def test_errors_are_one_line_with_the_apis_message_and_404_is_none(
    server: tuple[str, Recorder],
) -> None:
    url, _ = server
    api = KubeApi(configuration_for(url), timeout=5.0)
    try:
        assert await api.get(core_ref("ns", "pods", "missing")) is None
        assert await api.delete(core_ref("ns", "pods", "missing")) is False
        with pytest.raises(KubeApiError) as raised:
            await api.create(core_ref("ns", "pods"), {"metadata": {"name": "demo-builder"}})
    finally:
        await api.close()
    assert raised.value.status == 403 and raised.value.message == FORBIDDEN
    assert str(raised.value) == f"HTTP 403 Forbidden: {FORBIDDEN}"  # no headers, one line


async def test_every_call_has_a_timeout(server: tuple[str, Recorder]) -> None:
    url, rec = server
    rec.delay = 3.0
    api = KubeApi(configuration_for(url), timeout=0.5)
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        with pytest.raises(TimeoutError):
            await api.get(core_ref("ns", "pods", "slow"))
    finally:
        await api.close()
    assert loop.time() - started < 2.5  # answered by the timeout, not by the slow server


async def test_calls_run_in_a_bounded_pool_off_the_event_loop(
    server: tuple[str, Recorder],
) -> None:
    url, rec = server
    rec.delay = 0.3
    api = KubeApi(configuration_for(url), timeout=10.0, max_workers=3)
    ticks = 0

    async def heartbeat() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    beat = asyncio.create_task(heartbeat())
    try:
        await asyncio.gather(*(api.get(core_ref("ns", "pods", f"p{i}")) for i in range(9)))
    finally:
        beat.cancel()
        await api.close()
    assert len(rec.requests) == 9
    assert rec.peak == 3, rec.peak  # never more than the pool at once
    assert ticks >= 20  # the event loop ran while the calls waited (>= 0.9 s of 10 ms beats)

"""The shim's stdlib HTTP plumbing: in process against fake routes, and against a real shim."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import socketserver
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from loopphase.shim.host import Busy
from loopphase.shim.http import ApiServer, HttpError, LoopBridge, Request
from loopphase.shim.server import map_error

pytestmark = pytest.mark.timeout(60)

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """An asyncio loop running in a thread, standing in for the shim's main loop."""
    lp = asyncio.new_event_loop()
    thread = threading.Thread(target=lp.run_forever, daemon=True)
    thread.start()
    yield lp
    lp.call_soon_threadsafe(lp.stop)
    thread.join(timeout=5)
    lp.close()


def fake_routes(bridge: LoopBridge) -> dict[str, dict[str, Any]]:
    async def double(n: int) -> int:
        await asyncio.sleep(0)
        return n * 2

    async def never() -> None:
        await asyncio.Event().wait()

    async def busy() -> None:
        raise Busy("a send, restart or stop is in progress")

    def boom(request: Request) -> Any:
        raise RuntimeError("unexpected")

    def slow(request: Request) -> Any:
        return bridge.call(never())

    return {
        "/v1/health": {"GET": lambda r: {"ok": True}},
        "/v1/echo": {"POST": lambda r: {"got": r.json()}},
        "/v1/double": {"GET": lambda r: {"n": bridge.call(double(int(r.arg("n", "1"))))}},
        "/v1/busy": {"POST": lambda r: bridge.call(busy())},
        "/v1/slow": {"GET": slow},
        "/v1/boom": {"GET": boom},
    }


def make_server(
    loop: asyncio.AbstractEventLoop, cls: type[ApiServer] = ApiServer,
    connection_timeout: float = 30.0, max_body: int = 1024,
) -> ApiServer:
    bridge = LoopBridge(loop, timeout=0.5)
    return cls(("127.0.0.1", 0), fake_routes(bridge), TOKEN,
               public=frozenset({"/v1/health"}), map_error=map_error,
               connection_timeout=connection_timeout, max_body=max_body)


@pytest.fixture
def server(loop: asyncio.AbstractEventLoop) -> Iterator[ApiServer]:
    srv = make_server(loop)
    srv.serve_in_thread()
    yield srv
    srv.close()


def port_of(srv: ApiServer) -> int:
    return int(srv.server_address[1])


def call(
    srv: ApiServer, method: str, path: str, body: bytes | None = None,
    headers: dict[str, str] | None = None, conn: http.client.HTTPConnection | None = None,
    timeout: float = 5.0,
) -> tuple[int, Any, http.client.HTTPResponse]:
    conn = conn or http.client.HTTPConnection("127.0.0.1", port_of(srv), timeout=timeout)
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    raw = resp.read()
    return resp.status, json.loads(raw) if raw else None, resp


def test_routes_auth_and_errors(server: ApiServer) -> None:
    assert call(server, "GET", "/v1/health")[:2] == (200, {"ok": True})
    status, body, resp = call(server, "HEAD", "/v1/health")
    assert status == 200 and body is None and resp.getheader("Content-Type").startswith(
        "application/json")
    # Auth comes before routing: without a token even an unknown route is a 401.
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": TOKEN},
                    {"Authorization": f"Basic {TOKEN}"}):
        for method, path in (("GET", "/v1/double"), ("POST", "/v1/echo"), ("GET", "/nowhere")):
            status, body, _ = call(server, method, path, b"{}", headers)
            assert status == 401 and "token" in body["error"], (method, path, headers)
    assert call(server, "GET", "/v1/double?n=21", headers=AUTH)[:2] == (200, {"n": 42})
    assert call(server, "GET", "/v1/nowhere", headers=AUTH)[:2] == (404, {"error": "Not Found"})
    assert call(server, "POST", "/v1/echo", b'{"a": 1}', AUTH)[:2] == (200, {"got": {"a": 1}})
    status, body, _ = call(server, "POST", "/v1/echo", b"{nope", AUTH)
    assert status == 400 and "not valid JSON" in body["error"]
    status, body, _ = call(server, "POST", "/v1/echo", b"\xff\xfe", AUTH)
    assert status == 400 and "not valid JSON" in body["error"]
    assert call(server, "POST", "/v1/busy", b"{}", AUTH)[:2] == (
        409, {"error": "a send, restart or stop is in progress"})
    status, body, _ = call(server, "GET", "/v1/boom", headers=AUTH)
    assert status == 500 and "RuntimeError" in body["error"]


def test_wrong_method_is_405_with_allow(server: ApiServer) -> None:
    for method, path, allow in (("POST", "/v1/double", "GET, HEAD"),
                                ("GET", "/v1/echo", "POST"), ("DELETE", "/v1/echo", "POST"),
                                ("POST", "/v1/health", "GET, HEAD")):
        status, body, resp = call(server, method, path, b"{}", AUTH)
        assert status == 405 and body == {"error": "Method Not Allowed"}, (method, path)
        assert resp.getheader("Allow") == allow


def test_body_limit_413_and_chunked(server: ApiServer) -> None:
    # Declared far too large: refused without reading the body, connection closed.
    conn = http.client.HTTPConnection("127.0.0.1", port_of(server), timeout=5)
    conn.putrequest("POST", "/v1/echo")
    conn.putheader("Authorization", AUTH["Authorization"])
    conn.putheader("Content-Length", str(10 * 1024 * 1024))
    conn.endheaders()
    resp = conn.getresponse()
    assert resp.status == 413 and "larger than 1024" in json.loads(resp.read())["error"]
    assert resp.getheader("Connection") == "close"
    conn.close()

    def chunks(data: bytes, size: int = 100) -> Iterator[bytes]:
        yield from (data[i:i + size] for i in range(0, len(data), size))

    small = json.dumps({"text": "x" * 500}).encode()
    status, body, _ = call(server, "POST", "/v1/echo", chunks(small),  # type: ignore[arg-type]
                           AUTH)  # iterable body: sent chunked
    assert status == 200 and body == {"got": {"text": "x" * 500}}
    # Somewhat too large, sent whole (chunked or not): read and dropped, then a clean 413.
    big = json.dumps({"text": "x" * 5000}).encode()
    status, body, _ = call(server, "POST", "/v1/echo", chunks(big),  # type: ignore[arg-type]
                           AUTH)  # iterable body: sent chunked
    assert status == 413 and "larger than" in body["error"]
    status, body, _ = call(server, "POST", "/v1/echo", big, AUTH)
    assert status == 413 and "larger than" in body["error"]


def test_keep_alive_and_unread_body_closes(server: ApiServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port_of(server), timeout=5)
    try:
        assert call(server, "GET", "/v1/double?n=1", headers=AUTH, conn=conn)[:2] == (200, {"n": 2})
        sock = conn.sock
        assert call(server, "GET", "/v1/double?n=2", headers=AUTH, conn=conn)[:2] == (200, {"n": 4})
        assert conn.sock is sock  # HTTP/1.1 keep-alive: same connection
        # A refused request whose body was never read must not leave it as the next request.
        status, _, resp = call(server, "POST", "/v1/echo", b'{"GET /v1/x": 1}', conn=conn)
        assert status == 401 and resp.getheader("Connection") == "close"
        assert call(server, "GET", "/v1/double?n=3", headers=AUTH, conn=conn)[:2] == (200, {"n": 6})
    finally:
        conn.close()


def test_malformed_request_line_is_json(server: ApiServer) -> None:
    with socket.create_connection(("127.0.0.1", port_of(server)), timeout=5) as sock:
        sock.sendall(b"NONSENSE\r\n\r\n")
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400") and "error" in json.loads(body)


def test_loop_work_past_the_deadline_is_503(server: ApiServer) -> None:
    status, body, _ = call(server, "GET", "/v1/slow", headers=AUTH)
    assert status == 503 and "did not finish" in body["error"]


def test_closing_server_refuses(loop: asyncio.AbstractEventLoop) -> None:
    srv = make_server(loop)
    srv.serve_in_thread()
    conn = http.client.HTTPConnection("127.0.0.1", port_of(srv), timeout=5)
    assert call(srv, "GET", "/v1/health", conn=conn)[0] == 200
    srv.close()
    # The open keep-alive connection is still served by its thread, which now refuses.
    status, body, _ = call(srv, "GET", "/v1/health", conn=conn)
    assert status == 503 and "shutting down" in body["error"]
    conn.close()


class SingleThreaded(ApiServer):
    """The same server handling connections one at a time (the control for the test below)."""

    def process_request(self, request: Any, client_address: Any) -> None:
        socketserver.TCPServer.process_request(self, request, client_address)


def idle_connection_blocks_others(srv: ApiServer) -> bool:
    """Open a connection that sends half a request, then ask on another: True if it hangs."""
    srv.serve_in_thread()
    try:
        with socket.create_connection(("127.0.0.1", port_of(srv)), timeout=5) as idle:
            idle.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")  # headers never finished
            try:
                status = call(srv, "GET", "/v1/health", timeout=1.0)[0]
            except TimeoutError:
                return True
            assert status == 200
            return False
    finally:
        srv.close()


def test_idle_connection_does_not_block_another(loop: asyncio.AbstractEventLoop) -> None:
    assert not idle_connection_blocks_others(make_server(loop, connection_timeout=3.0))
    # Control: the check does catch a server that handles one connection at a time.
    assert idle_connection_blocks_others(make_server(loop, SingleThreaded, connection_timeout=3.0))


def test_bridge_on_a_closed_loop_is_503() -> None:
    lp = asyncio.new_event_loop()
    lp.close()

    async def nothing() -> None:
        return None

    with pytest.raises(HttpError) as err:
        LoopBridge(lp).call(nothing())
    assert err.value.status == 503


@pytest.mark.parametrize("module", ["loopphase.shim.server", "loopphase.cli"])
def test_shim_never_imports_aiohttp(module: str) -> None:
    code = (
        "import importlib, sys\n"
        f"importlib.import_module({module!r})\n"
        "from loopphase import cli\n"
        "importlib.import_module(cli.SUBCOMMANDS['shim'][0])\n"
        "print(sorted(m for m in sys.modules if m == 'loopphase.shim.client'\n"
        "             or m.split('.')[0] in ('aiohttp', 'kopf', 'kubernetes', 'yaml')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout.strip()
    assert out == "[]", out


# ---- against a real shim process ---------------------------------------------------------

async def test_real_shim_405_413_and_idle_connection(start_shim) -> None:
    shim = await start_shim("--no-start")
    good = {"Authorization": f"Bearer {shim.token}"}

    def raw(method: str, path: str, headers: dict[str, str], length: int | None = None,
            body: bytes | None = None) -> tuple[int, dict[str, Any], str | None]:
        conn = http.client.HTTPConnection("127.0.0.1", shim.port, timeout=5)
        try:
            conn.putrequest(method, path)
            for key, value in headers.items():
                conn.putheader(key, value)
            if length is not None:
                conn.putheader("Content-Length", str(length))
            conn.endheaders(body)
            resp = conn.getresponse()
            return resp.status, json.loads(resp.read()), resp.getheader("Allow")
        finally:
            conn.close()

    assert await asyncio.to_thread(raw, "GET", "/v1/send", good) == (
        405, {"error": "Method Not Allowed"}, "POST")
    assert (await asyncio.to_thread(raw, "GET", "/v1/send", {}))[0] == 401
    assert (await asyncio.to_thread(raw, "POST", "/v1/health", {}, 0, b""))[:2] == (
        405, {"error": "Method Not Allowed"})
    big = b'{"text": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    status, body, _ = await asyncio.to_thread(raw, "POST", "/v1/send", good, len(big), big)
    assert status == 413 and "larger than" in body["error"]

    # A connection that never finishes its request must not hold up the shim (it would, for
    # the 30 s connection timeout, if connections were handled one at a time).
    idle = socket.create_connection(("127.0.0.1", shim.port), timeout=5)
    try:
        idle.sendall(b"POST /v1/send HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        client = type(shim.client)(shim.url, shim.token, timeout=3.0)
        try:
            st = await client.state()
            assert not st.alive
            assert await client.health()
        finally:
            await client.close()
    finally:
        idle.close()

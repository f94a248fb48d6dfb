"""The shim's HTTP server is bounded (hardening fault 10): connections, the time to send one
request, and JSON nesting. Each test fails on a server without its bound."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator

import pytest
from loopphase.shim.http import MAX_JSON_DEPTH, ApiServer, LoopBridge, json_depth
from loopphase.shim.server import MIN_TOKEN_CHARS, build_parser, map_error, read_token

from tests.shim.test_shim_http import AUTH, TOKEN, call, fake_routes, loop, port_of  # noqa: F401

pytestmark = pytest.mark.timeout(60)


def bounded(lp: asyncio.AbstractEventLoop, **kw: float) -> ApiServer:
    return ApiServer(("127.0.0.1", 0), fake_routes(LoopBridge(lp, timeout=0.5)), TOKEN,
                     public=frozenset({"/v1/health"}), map_error=map_error, max_body=1 << 20,
                     **kw)  # type: ignore[arg-type]


@pytest.fixture
def small(loop: asyncio.AbstractEventLoop) -> Iterator[ApiServer]:  # noqa: F811
    srv = bounded(loop, max_connections=2, read_deadline=1.5, connection_timeout=30.0)
    srv.serve_in_thread()
    yield srv
    srv.close()


def read_until_closed(sock: socket.socket, limit: float) -> bytes:
    """Everything the server sends until it closes the connection (or ``limit`` seconds)."""
    sock.settimeout(0.2)
    data, deadline = b"", time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk
    raise AssertionError(f"connection still open after {limit}s; got {data!r}")


def test_connections_beyond_the_cap_get_503_without_a_thread(small: ApiServer) -> None:
    idle = [socket.create_connection(("127.0.0.1", port_of(small)), timeout=5) for _ in range(2)]
    try:
        # Both slots are taken by connections that have not sent a byte yet.
        with socket.create_connection(("127.0.0.1", port_of(small)), timeout=5) as third:
            third.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = read_until_closed(third, 5.0)
        assert answer.startswith(b"HTTP/1.1 503") and b"too many connections" in answer
    finally:
        for sock in idle:
            sock.close()
    # Slots come back once those connections are gone.
    deadline = time.monotonic() + 10
    while True:
        try:
            status = call(small, "GET", "/v1/health")[0]
        except (ConnectionError, OSError):
            status = 0
        if status == 200 or time.monotonic() > deadline:
            break
    assert status == 200


def test_a_trickling_client_is_cut_off_at_the_read_deadline(small: ApiServer) -> None:
    with socket.create_connection(("127.0.0.1", port_of(small)), timeout=5) as slow:
        slow.sendall(b"GET /v1/health HTTP/1.1\r\n")
        started = time.monotonic()
        closed = False
        while time.monotonic() - started < 10:  # 6x the deadline; each byte well inside 30 s
            try:
                slow.sendall(b"X")
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            slow.settimeout(0.3)
            try:
                if slow.recv(4096) == b"":
                    closed = True
                    break
            except TimeoutError:
                continue
            except ConnectionResetError:
                closed = True
                break
        assert closed, "a client sending one byte every 0.3 s was served for 10 s"


def test_deep_json_is_a_400_not_a_traceback(loop: asyncio.AbstractEventLoop) -> None:  # noqa: F811
    small = bounded(loop, read_deadline=30.0)  # the default connection cap: not under test here
    small.serve_in_thread()
    try:
        _deep_json_answers(small)
    finally:
        small.close()


def _deep_json_answers(small: ApiServer) -> None:
    for body in (b"[" * 200_000 + b"]" * 200_000,
                 json.dumps(json.loads("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1))).encode()):
        status, answer, _ = call(small, "POST", "/v1/echo", body=body, headers=AUTH)
        assert status == 400 and "nests deeper" in answer["error"], answer
    ok = json.dumps({"text": "hi", "nested": [[1]]}).encode()
    assert call(small, "POST", "/v1/echo", body=ok, headers=AUTH)[0] == 200


def test_json_depth() -> None:
    assert [json_depth(v) for v in (1, [], {"a": [1, {"b": 2}]}, [[[]]])] == [0, 1, 3, 3]


def test_hand_run_shim_listens_on_loopback_and_wants_a_real_token(tmp_path) -> None:
    args = build_parser().parse_args(["--role", "builder", "--backend", "sim", "--workdir", "w",
                                      "--token-file", str(tmp_path / "t")])
    assert args.host == "127.0.0.1"
    (tmp_path / "t").write_text("secret\n")
    with pytest.raises(ValueError, match=f"at least {MIN_TOKEN_CHARS}"):
        read_token(args)
    (tmp_path / "t").write_text("x" * MIN_TOKEN_CHARS + "\n")
    assert read_token(args) == "x" * MIN_TOKEN_CHARS

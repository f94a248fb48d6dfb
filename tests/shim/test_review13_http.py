"""Review of issue 13 (fault 10): request framing the shim's HTTP server mis-parsed, against a
real ``ApiServer`` on loopback.

Before the fix a chunk size of ``-1`` (``int(b"-1", 16)`` is -1) made the server call
``rfile.read(-1)``: it read until the client closed, holding a thread and buffering everything
sent (up to the 30 s read deadline at loopback speed), and never answered. ``Content-Length:
²`` passed ``str.isdigit()`` and came back as "body is not valid JSON".
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest
from loopphase.shim.http import ApiServer, LoopBridge
from loopphase.shim.server import map_error

from tests.shim.test_shim_http import TOKEN, fake_routes, loop, port_of  # noqa: F401

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def server(loop: asyncio.AbstractEventLoop) -> Iterator[ApiServer]:  # noqa: F811
    srv = ApiServer(("127.0.0.1", 0), fake_routes(LoopBridge(loop, timeout=0.5)), TOKEN,
                    public=frozenset({"/v1/health"}), map_error=map_error, max_body=1 << 20,
                    read_deadline=30.0)
    srv.serve_in_thread()
    yield srv
    srv.close()


def first_answer(srv: ApiServer, head: bytes, body: bytes, wait: float = 5.0) -> bytes:
    """The first whole answer (status, headers and Content-Length body), or a note that none
    came within ``wait`` seconds."""
    with socket.create_connection(("127.0.0.1", port_of(srv)), timeout=wait) as sock:
        sock.sendall(head + body)
        data = b""
        try:
            while True:
                header, sep, rest = data.partition(b"\r\n\r\n")
                if sep:
                    length = next((int(line.split(b":", 1)[1]) for line in header.split(b"\r\n")
                                   if line.lower().startswith(b"content-length:")), 0)
                    if len(rest) >= length:
                        return data
                chunk = sock.recv(4096)
                if not chunk:
                    return data
                data += chunk
        except TimeoutError:
            return data + b"(no whole answer within %.0f s)" % wait


@pytest.mark.parametrize("size", [b"-1", b"+5", b"0x10", b"1_0"])
def test_a_chunk_size_that_is_not_plain_hex_is_400_at_once(server: ApiServer, size: bytes) -> None:
    head = (b"POST /v1/echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode()
            + b"\r\nTransfer-Encoding: chunked\r\n\r\n" + size + b"\r\n")
    answer = first_answer(server, head, b'{"a": 1}' + b" " * 65536)
    assert answer.startswith(b"HTTP/1.1 400") and b"malformed chunked body" in answer, answer


def test_a_non_ascii_digit_content_length_is_not_a_number(server: ApiServer) -> None:
    head = ("POST /v1/echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN
            + "\r\nContent-Length: \u00b2\r\n\r\n").encode("latin-1")
    answer = first_answer(server, head, b"{}")
    assert answer.startswith(b"HTTP/1.1 400") and b"Content-Length is not a number" in answer


def test_plain_chunked_bodies_still_work(server: ApiServer) -> None:
    head = (b"POST /v1/echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode()
            + b"\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
    answer = first_answer(server, head, b"8\r\n{\"a\": 1}\r\n0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200") and b'"got": {"a": 1}' in answer, answer

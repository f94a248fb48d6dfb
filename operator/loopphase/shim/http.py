"""The shim's HTTP plumbing on the standard library (no aiohttp: every agent pod carries a shim).

``ApiServer`` is a ``ThreadingHTTPServer`` (one daemon thread per connection, HTTP/1.1
keep-alive) with three bounds: at most ``MAX_CONNECTIONS`` connections at once (more are
answered 503 and closed without a thread), a socket timeout for idle connections, and a
deadline for reading one whole request (``READ_DEADLINE``: a client trickling a byte every few
seconds is cut off, not served forever). JSON bodies nest at most ``MAX_JSON_DEPTH`` levels. Requests
are authenticated (bearer token, constant-time compare) before routing, so an unauthenticated
caller learns nothing about which routes exist. Route functions run in the connection's
thread; anything touching the agent is handed to the asyncio loop with ``LoopBridge.call``,
so the agent host stays single-threaded. Every error is JSON ``{"error": "..."}``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hmac
import json
import logging
import re
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

log = logging.getLogger("loopphase.shim")

T = TypeVar("T")

MAX_BODY = 1024 * 1024
DRAIN_CAP = 4 * 1024 * 1024  # an oversized body up to this is read and dropped before the 413
CONNECTION_TIMEOUT = 30.0  # per socket read/write; above aiohttp's 15 s client keep-alive
REQUEST_TIMEOUT = 90.0  # one request's work in the loop (a restart's kill budget is 15 s)
READ_DEADLINE = 30.0  # reading one request (line, headers, body) from its first byte
MAX_CONNECTIONS = 32  # the operator holds one or two; a fleet of clients is an attack
MAX_JSON_DEPTH = 16  # the API's bodies are flat objects
_HEX_RE = re.compile(rb"[0-9A-Fa-f]{1,16}")
_DECIMAL_RE = re.compile(r"[0-9]{1,19}")


class HttpError(Exception):
    """Answer the request with ``status`` and ``{"error": message}``."""

    def __init__(
        self, status: int, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: Mapping[str, list[str]]
    read_body: Callable[[], bytes]

    def arg(self, name: str, default: str) -> str:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        try:
            value = json.loads(self.read_body().decode("utf-8"))
        except ValueError as exc:  # includes UnicodeDecodeError and JSONDecodeError
            raise HttpError(400, f"body is not valid JSON: {exc}") from exc
        except RecursionError as exc:
            raise HttpError(400, f"body nests deeper than {MAX_JSON_DEPTH} levels") from exc
        if json_depth(value) > MAX_JSON_DEPTH:
            raise HttpError(400, f"body nests deeper than {MAX_JSON_DEPTH} levels")
        return value


def json_depth(value: Any) -> int:
    """Nesting depth of a parsed JSON value (a scalar is 0, ``[]`` is 1), without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            deepest = max(deepest, depth + 1)
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            deepest = max(deepest, depth + 1)
            stack.extend((v, depth + 1) for v in item)
    return deepest


Route = Callable[[Request], Any]  # returns the JSON payload of a 200 answer
Routes = Mapping[str, Mapping[str, Route]]  # path -> method -> route
ErrorMapper = Callable[[Exception], HttpError | None]


class LoopBridge:
    """Run coroutines on the shim's asyncio loop from HTTP threads, with a deadline."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float = REQUEST_TIMEOUT) -> None:
        self.loop = loop
        self.timeout = timeout

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        try:
            future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        except RuntimeError as exc:  # the loop is closed: the shim is going down
            coro.close()
            raise HttpError(503, "shim is shutting down") from exc
        done, _ = concurrent.futures.wait([future], timeout=self.timeout)
        if not done:
            future.cancel()
            raise HttpError(503, f"request did not finish within {self.timeout:.0f}s")
        try:
            return future.result()
        except concurrent.futures.CancelledError as exc:  # the loop cancelled it: shutting down
            raise HttpError(503, "shim is shutting down") from exc


class ApiServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(
        self,
        address: tuple[str, int],
        routes: Routes,
        token: str,
        public: frozenset[str],
        map_error: ErrorMapper,
        server_version: str = "loopphase-shim",
        connection_timeout: float = CONNECTION_TIMEOUT,
        max_body: int = MAX_BODY,
        max_connections: int = MAX_CONNECTIONS,
        read_deadline: float = READ_DEADLINE,
    ) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.routes = routes
        self.token = token
        self.public = public
        self.map_error = map_error
        self.max_body = max_body
        self.closing = threading.Event()
        self._thread: threading.Thread | None = None
        self.slots = threading.BoundedSemaphore(max_connections)
        self.read_deadline = read_deadline
        self.reading: dict[socket.socket, float] = {}  # connection -> deadline for its request
        self.reading_lock = threading.Lock()
        self._reaper: threading.Thread | None = None
        handler = type(
            "ShimRequestHandler",
            (RequestHandler,),
            {"timeout": connection_timeout, "server_version": server_version},
        )
        super().__init__(address, handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind would resolve our own name (socket.getfqdn), a DNS lookup
        # without a timeout; nothing here needs it.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def serve_in_thread(self) -> threading.Thread:
        self._thread = threading.Thread(target=self.serve_forever, name="shim-http", daemon=True)
        self._thread.start()
        self._reaper = threading.Thread(target=self._reap, name="shim-http-reaper", daemon=True)
        self._reaper.start()
        return self._thread

    # ---- bounds --------------------------------------------------------------------------
    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve in a thread if a slot is free; else answer 503 here and close."""
        if not self.slots.acquire(blocking=False):
            log.warning("refused a connection from %s: %d connections already open",
                        client_address, MAX_CONNECTIONS)
            try:
                request.settimeout(1.0)
                body = b'{"error": "too many connections"}'
                request.sendall(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                    b"Connection: close\r\nContent-Length: " + str(len(body)).encode()
                    + b"\r\n\r\n" + body
                )
            except OSError as exc:
                log.info("could not tell %s it was refused: %s", client_address, exc)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self.reading_lock:
                self.reading.pop(request, None)
            self.slots.release()

    def arm_read_deadline(self, conn: socket.socket) -> None:
        with self.reading_lock:
            self.reading[conn] = time.monotonic() + self.read_deadline

    def disarm_read_deadline(self, conn: socket.socket) -> None:
        with self.reading_lock:
            self.reading.pop(conn, None)

    def _reap(self) -> None:
        """Cut connections still reading a request past its deadline (slow-loris clients)."""
        while not self.closing.wait(min(1.0, self.read_deadline / 4)):
            now = time.monotonic()
            with self.reading_lock:
                late = [c for c, deadline in self.reading.items() if deadline <= now]
                for conn in late:
                    del self.reading[conn]
            for conn in late:
                log.warning("cut a connection that took over %.0fs to send one request",
                            self.read_deadline)
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError as exc:
                    log.info("connection already gone: %s", exc)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection failed outside a route (client went away, ...): log it, go on."""
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError):
            log.info("http connection from %s dropped: %s", client_address, exc)
        else:
            log.warning("http connection from %s failed", client_address, exc_info=True)

    def close(self) -> None:
        """Stop accepting, refuse further requests on open connections, close the socket."""
        self.closing.set()
        if self._thread is not None:
            self.shutdown()  # returns once serve_forever has left its loop
        self.server_close()


class RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    default_request_version = "HTTP/1.0"  # so even a garbled request line gets a status line
    sys_version = ""
    server: ApiServer

    def handle_one_request(self) -> None:
        # The deadline covers the request line, headers and body; routes run without it (their
        # own budget is LoopBridge's). Idle keep-alive waits are the socket timeout's.
        self.server.arm_read_deadline(self.connection)
        try:
            super().handle_one_request()
        finally:
            self.server.disarm_read_deadline(self.connection)

    # ---- answers -------------------------------------------------------------------------
    def answer(self, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> None:
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The stdlib's own errors (bad request line, headers too large, ...) as JSON too."""
        self.log_error("code %d, message %s", code, message)
        self.close_connection = True
        self.answer(code, {"error": message or self.responses.get(code, ("error",))[0]})

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http %s: " + format, self.address_string(), *args)

    def log_error(self, format: str, *args: Any) -> None:
        log.info("http %s: " + format, self.address_string(), *args)

    # ---- body ----------------------------------------------------------------------------
    def read_body(self) -> bytes:
        self._body_read = True
        try:
            return self._read_body()
        finally:
            self.server.disarm_read_deadline(self.connection)  # the route's work is not reading

    def _read_body(self) -> bytes:
        limit = self.server.max_body
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked(limit)
        raw = self.headers.get("Content-Length")
        if raw is None:
            return b""
        if not _DECIMAL_RE.fullmatch(raw.strip()):  # ASCII digits: "²".isdigit() is True
            self.close_connection = True
            raise HttpError(400, "Content-Length is not a number")
        size = int(raw)
        try:
            if size > limit:
                self.close_connection = True
                if size <= DRAIN_CAP:  # read it, so the client is not cut off mid-send
                    self._discard(size)
                raise HttpError(413, f"body is larger than {limit} bytes")
            data = self.rfile.read(size)
        except TimeoutError as exc:
            self.close_connection = True
            raise HttpError(408, "timed out reading the body") from exc
        if len(data) != size:
            self.close_connection = True
            raise HttpError(400, "body is shorter than its Content-Length")
        return data

    def _read_chunked(self, limit: int) -> bytes:
        try:
            return self._read_chunks(limit)
        except TimeoutError as exc:
            self.close_connection = True
            raise HttpError(408, "timed out reading the body") from exc

    def _read_chunks(self, limit: int) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            digits = line.split(b";", 1)[0].strip()
            # Hex digits only: int(x, 16) also takes "-1" (read(-1) reads to EOF, unbounded),
            # "+5", "0x10" and "1_0".
            if not _HEX_RE.fullmatch(digits):
                self.close_connection = True
                raise HttpError(400, "malformed chunked body")
            size = int(digits, 16)
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers: ignored
                if total > limit:
                    self.close_connection = True
                    raise HttpError(413, f"body is larger than {limit} bytes")
                return b"".join(parts)
            total += size
            if total > DRAIN_CAP:
                self.close_connection = True
                raise HttpError(413, f"body is larger than {limit} bytes")
            if total > limit:
                self._discard(size)
                parts = []
            else:
                parts.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def _discard(self, size: int) -> None:
        while size > 0:
            block = self.rfile.read(min(size, 65536))
            if not block:
                return
            size -= len(block)

    def _has_body(self) -> bool:
        return bool(
            "chunked" in self.headers.get("Transfer-Encoding", "").lower()
            or self.headers.get("Content-Length", "0").strip() not in ("", "0")
        )

    # ---- dispatch ------------------------------------------------------------------------
    def authorized(self) -> bool:
        scheme, _, given = self.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), self.server.token.encode()
        )

    def dispatch(self) -> None:
        self._body_read = False
        if self.server.closing.is_set():
            self.close_connection = True
            self.answer(503, {"error": "shim is shutting down"})
            return
        split = urlsplit(self.path)
        path = unquote(split.path)
        try:
            payload = self.route(path, split.query)
        except HttpError as exc:
            status, message, headers = exc.status, exc.message, exc.headers
        else:
            status, message, headers = 200, "", {}
        if not self._body_read and self._has_body():
            self.close_connection = True  # the unread body would be taken for the next request
        if status == 200:
            self.answer(200, payload)
        else:
            self.answer(status, {"error": message}, headers)

    def route(self, path: str, query: str) -> Any:
        if not (self._has_body() and not self._body_read):
            self.server.disarm_read_deadline(self.connection)
        if path not in self.server.public and not self.authorized():
            log.warning("refused %s %s: missing or wrong bearer token", self.command, path)
            raise HttpError(401, "missing or wrong bearer token")
        methods = self.server.routes.get(path)
        if methods is None:
            raise HttpError(404, "Not Found")
        method = "GET" if self.command == "HEAD" and "GET" in methods else self.command
        fn = methods.get(method)
        if fn is None:
            allowed = sorted({*methods, *(["HEAD"] if "GET" in methods else [])})
            raise HttpError(405, "Method Not Allowed", {"Allow": ", ".join(allowed)})
        request = Request(
            method=method,
            path=path,
            query=parse_qs(query, keep_blank_values=True),
            read_body=self.read_body,
        )
        try:
            return fn(request)
        except HttpError:
            raise
        except Exception as exc:
            mapped = self.server.map_error(exc)
            if mapped is not None:
                raise mapped from exc
            log.exception("%s %s failed", self.command, path)
            raise HttpError(500, f"internal error: {type(exc).__name__}") from exc

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = dispatch

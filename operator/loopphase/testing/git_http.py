"""A real git server on loopback for tests and benchmarks: ``git http-backend`` behind a small
threaded WSGI server (wsgiref), serving every repository under ``root`` over smart HTTP.

Pushes are enabled (the CGI request carries ``REMOTE_USER``, which is how http-backend decides
that ``receive-pack`` is allowed), so a repository's ``post-receive`` hook runs on every push,
inside the server, exactly as on a git host. Request bodies must carry a Content-Length (git
sends one for pushes under ``http.postBuffer``, 1 MiB by default).
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

log = logging.getLogger(__name__)

BACKEND_TIMEOUT = 60.0
_STATUS_TEXT = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
                500: "Internal Server Error"}


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        log.debug("git-http %s", format % args)


def _backend_app(root: Path, counter: Callable[[str], None]) -> Callable[..., Iterable[bytes]]:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/tmp"),
            "GIT_PROJECT_ROOT": str(root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REMOTE_USER": "loopphase-test",
            "REMOTE_ADDR": environ.get("REMOTE_ADDR", "127.0.0.1"),
            "GATEWAY_INTERFACE": "CGI/1.1",
            "REQUEST_METHOD": environ["REQUEST_METHOD"],
            "PATH_INFO": environ.get("PATH_INFO", ""),
            "QUERY_STRING": environ.get("QUERY_STRING", ""),
            "CONTENT_TYPE": environ.get("CONTENT_TYPE", ""),
        }
        env.update({k: v for k, v in environ.items() if k.startswith("HTTP_")})
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        env["CONTENT_LENGTH"] = str(len(body))
        counter(f"{environ['REQUEST_METHOD']} {environ.get('PATH_INFO', '')}?"
                f"{environ.get('QUERY_STRING', '')}")
        try:
            proc = subprocess.run(["git", "http-backend"], input=body, env=env,
                                  capture_output=True, timeout=BACKEND_TIMEOUT, check=False)
        except subprocess.TimeoutExpired:
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
            return [b"git http-backend timed out\n"]
        out = proc.stdout
        sep = b"\r\n\r\n" if b"\r\n\r\n" in out else b"\n\n"
        head, _, payload = out.partition(sep)
        status = "200 OK"
        headers: list[tuple[str, str]] = []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = value.strip()
            elif name:
                headers.append((name.strip(), value.strip()))
        if proc.returncode != 0 and not out:
            code = 500
            status = f"{code} {_STATUS_TEXT[code]}"
            payload = proc.stderr
        start_response(status, headers)
        return [payload]

    return app


class GitHttpServer:
    """``with GitHttpServer(root) as server: server.url("origin.git")``.

    ``requests`` lists every request served (``"GET /origin.git/info/refs?service=..."``), so
    tests and benchmarks can count what clients cost the git host.
    """

    def __init__(self, root: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.root = Path(root)
        self.requests: list[str] = []
        self._lock = threading.Lock()
        self._server = make_server(host, port, _backend_app(self.root, self._count),
                                   server_class=_ThreadingWSGIServer, handler_class=_QuietHandler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="git-http",
                                        daemon=True)

    def _count(self, request: str) -> None:
        with self._lock:
            self.requests.append(request)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def start(self) -> GitHttpServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> GitHttpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

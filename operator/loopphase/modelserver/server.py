"""``loopphase model-server``: the scripted endpoint over HTTP (aiohttp).

Routes (each also under ``/agent/<name>``, which is how an agent is usually told apart)::

    POST /v1/messages                 Anthropic Messages (stream or not)
    POST /v1/messages/count_tokens    {"input_tokens": n}
    POST /v1/chat/completions         OpenAI-compatible chat completions (stream or not)
    GET  /v1/models                   a one-model list (some clients ask)
    GET  /_log                        the request log as JSON (?agent=NAME)

Without the prefix the agent is found by API key (``x-api-key`` or ``Authorization: Bearer``,
listed in the script's ``keys``), then by the ``x-loopphase-agent`` header, then by the
agents' ``system_match`` on the system prompt, then the script's only agent. An unknown agent is a 404 naming the known ones.

In tests: ``with ModelServer(script) as server: server.base_url("builder")``; the server runs
on its own thread and event loop, so sync and async tests can share one per module.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from loopphase.modelserver.engine import Engine, RequestFacts, human_text, newest_turn_message
from loopphase.modelserver.script import Script, ScriptError, load_script
from loopphase.modelserver.wire import (
    anthropic_error,
    anthropic_message,
    anthropic_stream_body,
    anthropic_stream_head,
    openai_error,
    openai_message,
    openai_stream,
    tokens,
)

log = logging.getLogger("loopphase.modelserver")

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
EXCERPT = 300


@dataclass(frozen=True)
class LoggedRequest:
    """One request as the log keeps it (``GET /_log`` gives these as camel-free JSON)."""

    time: float
    agent: str
    api: str
    path: str
    model: str
    stream: bool
    main: bool
    label: str
    status: int
    human_text: str | None
    tool_results: list[str]
    headers: dict[str, str]
    history: list[str]  # excerpts of the earlier assistant texts in the conversation sent
    reset_epoch: float | None = None  # a limit answer's anthropic-ratelimit-unified-reset


def _tool_results(body: dict[str, Any]) -> list[str]:
    """Excerpts of the tool results in the newest message (what the CLI's tools printed)."""
    last = newest_turn_message(body)
    if last is None:
        return []
    out: list[str] = []
    if last.get("role") == "tool":  # OpenAI
        out.append(str(last.get("content"))[:EXCERPT])
    content = last.get("content")
    if isinstance(content, list):
        for block in content:
            if isinstance(block, dict) and block.get("type") == "tool_result":
                inner = block.get("content")
                if isinstance(inner, list):
                    inner = " ".join(str(b.get("text", "")) for b in inner if isinstance(b, dict))
                out.append(str(inner)[:EXCERPT])
    return out


def system_text(body: dict[str, Any]) -> str:
    """The system prompt as text (Anthropic ``system`` string/blocks, or OpenAI system messages)."""
    parts: list[str] = []
    system = body.get("system")
    if isinstance(system, str):
        parts.append(system)
    elif isinstance(system, list):
        parts += [str(b.get("text", "")) for b in system if isinstance(b, dict)]
    for message in body.get("messages") or []:
        if isinstance(message, dict) and message.get("role") == "system":
            content = message.get("content")
            parts.append(content if isinstance(content, str) else json.dumps(content))
    return "\n".join(parts)


def _assistant_texts(body: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for message in body.get("messages") or []:
        if not isinstance(message, dict) or message.get("role") != "assistant":
            continue
        content = message.get("content")
        if isinstance(content, str):
            out.append(content[:EXCERPT])
        elif isinstance(content, list):
            out += [str(b.get("text", ""))[:EXCERPT] for b in content
                    if isinstance(b, dict) and b.get("type") == "text" and b.get("text")]
    return out


class ModelApp:
    """The aiohttp application around one :class:`Engine`, with the request log."""

    def __init__(self, script: Script, log_file: Path | None = None, dump_dir: Path | None = None) -> None:
        self.engine = Engine(script)
        self.dump_dir = dump_dir
        self.log: list[LoggedRequest] = []
        self.log_lock = threading.Lock()
        self.log_file = log_file

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        routes = [
            ("POST", "/v1/messages", self.messages),
            ("POST", "/v1/messages/count_tokens", self.count_tokens),
            ("POST", "/v1/chat/completions", self.chat),
            ("GET", "/v1/models", self.models),
        ]
        for method, path, handler in routes:
            app.router.add_route(method, path, handler)
            app.router.add_route(method, "/agent/{agent}" + path, handler)
        app.router.add_get("/_log", self.get_log)
        return app

    # -- routing -------------------------------------------------------------------------
    def agent_of(self, request: web.Request, body: dict[str, Any]) -> str:
        script = self.engine.script
        agents = script.agents
        name = request.match_info.get("agent")
        if name is None:
            auth = request.headers.get("authorization", "")
            key = request.headers.get("x-api-key") or (auth[7:] if auth.lower().startswith("bearer ") else "")
            name = script.agent_for_key(key) or request.headers.get("x-loopphase-agent")
        if name is None:
            name = script.agent_for_system(system_text(body))
        if name is None and len(agents) == 1:
            name = next(iter(agents))
        if name not in agents:
            known = ", ".join(sorted(agents)) or "none"
            raise web.HTTPNotFound(text=json.dumps({"type": "error", "error": {
                "type": "not_found_error",
                "message": f"no scripted agent {name!r} (known: {known}); use the /agent/<name> prefix"}}),
                content_type="application/json")
        return name

    def record(self, entry: LoggedRequest) -> None:
        with self.log_lock:
            self.log.append(entry)
        if self.log_file is not None:
            with self.log_file.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(asdict(entry)) + "\n")
        log.info("%s %s main=%s -> %s %s", entry.agent, entry.path, entry.main, entry.status, entry.label)

    def requests(self, agent: str | None = None) -> list[LoggedRequest]:
        with self.log_lock:
            return [r for r in self.log if agent is None or r.agent == agent]

    async def _read(self, request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError as exc:
            raise web.HTTPBadRequest(text=json.dumps({"type": "error", "error": {
                "type": "invalid_request_error", "message": f"body is not JSON: {exc}"}}),
                content_type="application/json") from exc
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(text='{"type":"error","error":{"type":"invalid_request_error","message":"body must be an object"}}',
                                     content_type="application/json")
        return body

    # -- handlers ------------------------------------------------------------------------
    async def models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "scripted", "object": "model", "owned_by": "loopphase"}]})

    async def count_tokens(self, request: web.Request) -> web.Response:
        body = await self._read(request)
        return web.json_response({"input_tokens": tokens(json.dumps(body.get("messages", [])))})

    async def get_log(self, request: web.Request) -> web.Response:
        agent = request.query.get("agent")
        return web.json_response([asdict(r) for r in self.requests(agent)])

    async def messages(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "anthropic")

    async def chat(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "openai")

    async def _serve(self, request: web.Request, api: str) -> web.StreamResponse:
        body = await self._read(request)
        agent = self.agent_of(request, body)
        main = bool(body.get("tools"))
        if self.dump_dir is not None:
            self.dump_dir.mkdir(parents=True, exist_ok=True)
            name = f"{time.time():.3f}-{agent}-{api}.json"
            (self.dump_dir / name).write_text(json.dumps({"path": request.path, "headers": dict(request.headers), "body": body}, indent=1))
        human = human_text(body)
        answer, label = self.engine.answer(agent, RequestFacts(api, main, human), time.time())
        model = str(body.get("model", "scripted"))
        stream = bool(body.get("stream"))
        self.record(LoggedRequest(
            time=time.time(), agent=agent, api=api, path=request.path, model=model, stream=stream,
            main=main, label=label, status=answer.status,
            human_text=human[:EXCERPT] if human else None, tool_results=_tool_results(body),
            headers={k.lower(): v for k, v in request.headers.items()
                     if k.lower() in ("user-agent", "anthropic-beta", "x-app")},
            history=_assistant_texts(body),
            reset_epoch=(float(answer.headers["anthropic-ratelimit-unified-reset"])
                         if "anthropic-ratelimit-unified-reset" in answer.headers else None),
        ))
        input_tokens = tokens(json.dumps(body.get("messages", [])))
        if answer.is_error:
            payload = anthropic_error(answer) if api == "anthropic" else openai_error(answer)
            headers = {**answer.headers, "request-id": payload.get("request_id", "req_scripted")}
            return web.json_response(payload, status=answer.status, headers=headers)
        if not stream:
            if answer.stall_seconds:
                await asyncio.sleep(answer.stall_seconds)
            payload = (anthropic_message(answer, model, input_tokens) if api == "anthropic"
                       else openai_message(answer, model, input_tokens))
            return web.json_response(payload)
        response = web.StreamResponse(headers={"content-type": "text/event-stream", "cache-control": "no-cache"})
        await response.prepare(request)
        if api == "anthropic":
            await response.write(anthropic_stream_head(model, input_tokens).encode())
            events = anthropic_stream_body(answer, pieces=max(4, int(answer.slow_seconds * 2)))
        else:
            events = openai_stream(answer, model, input_tokens, pieces=max(4, int(answer.slow_seconds * 2)))
        if answer.stall_seconds:
            # A hung stream: headers (and the message start) sent, then nothing.
            await asyncio.sleep(answer.stall_seconds)
            return response
        pause = answer.slow_seconds / max(1, len(events))
        for event in events:
            await response.write(event.encode())
            if pause:
                await asyncio.sleep(pause)
        await response.write_eof()
        return response


async def _cancel_pending() -> None:
    """Cancel what is still running on the server's loop (hung answers still sleeping)."""
    current = asyncio.current_task()
    pending = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


class ModelServer:
    """The endpoint on its own thread: ``start()`` -> port; ``stop()``; also a context manager."""

    def __init__(self, script: Script | str | Path, host: str = "127.0.0.1", port: int = 0,
                 log_file: Path | None = None) -> None:
        self.model = ModelApp(script if isinstance(script, Script) else load_script(script), log_file)
        self.host = host
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> ModelServer:
        self._thread = threading.Thread(target=self._run, name="model-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT):
            raise RuntimeError(f"model server did not start within {START_TIMEOUT}s")
        if self._error is not None:
            raise RuntimeError(f"model server failed to start: {self._error}") from self._error
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except Exception as exc:
            log.exception("model server failed")
            self._error = exc
            self._ready.set()
            return
        loop.run_forever()
        loop.run_until_complete(self._cleanup())
        loop.run_until_complete(_cancel_pending())
        loop.close()

    async def _serve(self) -> None:
        self._runner = web.AppRunner(self.model.app(), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server  # the bound socket tells the port when 0 was asked
        if server is not None and server.sockets:
            self.port = int(server.sockets[0].getsockname()[1])
        self._ready.set()

    async def _cleanup(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(STOP_TIMEOUT)
        self._loop = None

    def __enter__(self) -> ModelServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- use -----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def base_url(self, agent: str) -> str:
        """ANTHROPIC_BASE_URL for this agent (the OpenAI base is this plus ``/v1``)."""
        return f"{self.url}/agent/{agent}"

    def load(self, script: Script | str) -> None:
        """Add or replace agents (a replaced agent starts again at its first turn)."""
        self.model.engine.load(script if isinstance(script, Script) else load_script(script))

    def requests(self, agent: str | None = None) -> list[LoggedRequest]:
        return self.model.requests(agent)

    def position(self, agent: str) -> int:
        """How many turns of the agent's script were consumed."""
        return self.model.engine.position(agent)


@contextmanager
def running(script: Script | str | Path) -> Iterator[ModelServer]:
    server = ModelServer(script).start()
    try:
        yield server
    finally:
        server.stop()


def build_parser() -> argparse.ArgumentParser:
    from loopphase.cli import LOG_LEVELS, log_level, plain

    p = argparse.ArgumentParser(prog="loopphase model-server",
                                description=plain(__doc__.split("\n")[0]))
    p.add_argument("--script", required=True, help="the script YAML (see docs/real-clis.md)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8787, help="port to listen on (default 8787)")
    p.add_argument("--log-file", type=Path, help="append every request as one JSON line")
    p.add_argument("--dump-dir", type=Path, help="write every request body here (debugging a CLI)")
    p.add_argument("--log-level", type=log_level, default="INFO",
                   help=f"one of {', '.join(LOG_LEVELS)} (default INFO)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        script = load_script(args.script)
    except ScriptError as exc:
        print(f"loopphase model-server: {exc}", file=sys.stderr)
        return 2
    model = ModelApp(script, args.log_file, args.dump_dir)
    print(f"model server on http://{args.host}:{args.port} (agents: {', '.join(script.agents)}); "
          f"ANTHROPIC_BASE_URL=http://{args.host}:{args.port}/agent/<name>", flush=True)
    web.run_app(model.app(), host=args.host, port=args.port, print=None, access_log=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())

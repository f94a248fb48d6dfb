"""``loopphase shim``: host one agent CLI in tmux behind a small authenticated HTTP API.

API (JSON, prefix /v1; every route but /v1/health needs ``Authorization: Bearer <token>``):
  GET  /v1/health                 {"ok": true}, no token (readiness probe)
  GET  /v1/state?lines=N          ShimState (see loopphase.shim.protocol)
  POST /v1/send    {text, submit?: "Enter"|"C-m"}         -> SendResult; 409 while busy or a dialog is shown
  POST /v1/restart {mode: warm|cold, kickoff?, continuation?, phaseIndex?, phaseId?}
                                                          -> {pid, startedAt, mode}; 409 busy
  POST /v1/stop                   -> {"stopped": true}
Errors are JSON ``{"error": "..."}`` with a 4xx/5xx status. No request can run a shell.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys
import uuid
from pathlib import Path
from typing import Any

from loopphase import __version__
from loopphase.cli import LOG_LEVELS, log_level, plain
from loopphase.core.typeable import untypeable_reason
from loopphase.shim.adapters import BACKENDS, AgentConfig, LaunchError
from loopphase.shim.host import AgentHost, Busy, DialogOpen, StopFailed
from loopphase.shim.http import ApiServer, HttpError, LoopBridge, Request, Routes
from loopphase.shim.protocol import (
    API_PREFIX,
    DEFAULT_STATE_LINES,
    MAX_STATE_LINES,
)
from loopphase.shim.tmux import Tmux, TmuxError
from loopphase.shim.transcript import TranscriptTail

log = logging.getLogger("loopphase.shim")

SUBMIT_KEYS = ("Enter", "C-m")
MAX_PROMPT_CHARS = 200_000


class BadRequest(HttpError):
    def __init__(self, message: str) -> None:
        super().__init__(400, message)


def map_error(exc: Exception) -> HttpError | None:
    """The agent host's failures as HTTP answers (None: an unexpected error, a logged 500)."""
    if isinstance(exc, LaunchError):
        return HttpError(400, str(exc))
    if isinstance(exc, (Busy, DialogOpen)):
        return HttpError(409, str(exc))
    if isinstance(exc, StopFailed):
        log.error("%s", exc)
        return HttpError(500, str(exc))
    if isinstance(exc, (TmuxError, TimeoutError)):
        log.error("tmux: %s", exc)
        return HttpError(503, f"tmux: {exc}")
    return None


def json_body(request: Request) -> dict[str, Any]:
    body = request.json()
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object")
    return body


def opt_str(body: dict[str, Any], key: str, limit: int = MAX_PROMPT_CHARS) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{key} must be a string")
    if len(value) > limit:
        raise BadRequest(f"{key} is longer than {limit} characters")
    return value


class Api:
    """The routes; each runs in an HTTP thread and hands agent work to the loop."""

    def __init__(self, host: AgentHost, bridge: LoopBridge) -> None:
        self.host = host
        self.bridge = bridge

    def routes(self) -> Routes:
        return {
            f"{API_PREFIX}/health": {"GET": self.health},
            f"{API_PREFIX}/state": {"GET": self.state},
            f"{API_PREFIX}/send": {"POST": self.send},
            f"{API_PREFIX}/restart": {"POST": self.restart},
            f"{API_PREFIX}/stop": {"POST": self.stop},
        }

    def health(self, request: Request) -> dict[str, Any]:
        return {"ok": True}

    def state(self, request: Request) -> dict[str, Any]:
        raw = request.arg("lines", str(DEFAULT_STATE_LINES))
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_STATE_LINES:
            raise BadRequest(f"lines must be an integer from 1 to {MAX_STATE_LINES}")
        return self.bridge.call(self.host.state(int(raw))).wire()

    def send(self, request: Request) -> dict[str, Any]:
        body = json_body(request)
        text = body.get("text")
        if not isinstance(text, str):
            raise BadRequest("text must be a non-empty string")
        problem = untypeable_reason(text)
        if problem is not None:
            raise BadRequest(problem)
        submit = body.get("submit")
        if submit is not None and submit not in SUBMIT_KEYS:
            raise BadRequest(f"submit must be one of {', '.join(SUBMIT_KEYS)}")
        return self.bridge.call(self.host.send(text, submit)).wire()

    def restart(self, request: Request) -> dict[str, Any]:
        body = json_body(request)
        mode = body.get("mode")
        if mode not in ("warm", "cold"):
            raise BadRequest("mode must be 'warm' or 'cold'")
        phase_index = body.get("phaseIndex")
        if phase_index is not None and (
            not isinstance(phase_index, int) or isinstance(phase_index, bool) or phase_index < 0
        ):
            raise BadRequest("phaseIndex must be a non-negative integer")
        phase_id = opt_str(body, "phaseId", 63)
        if phase_id is not None and (not phase_id or not phase_id.replace("-", "").isalnum()):
            raise BadRequest("phaseId must be a DNS label")
        kickoff = opt_str(body, "kickoff")
        continuation = opt_str(body, "continuation")
        result = self.bridge.call(
            self.host.restart(
                mode,
                kickoff=kickoff,
                continuation=continuation,
                phase_index=phase_index,
                phase_id=phase_id,
            )
        )
        return result.wire()

    def stop(self, request: Request) -> dict[str, Any]:
        self.bridge.call(self.host.stop())
        return {"stopped": True}


def build_server(
    host: AgentHost, token: str, address: tuple[str, int], loop: asyncio.AbstractEventLoop
) -> ApiServer:
    api = Api(host, LoopBridge(loop))
    return ApiServer(
        address,
        api.routes(),
        token,
        public=frozenset({f"{API_PREFIX}/health"}),
        map_error=map_error,
        server_version=f"loopphase-shim/{__version__}",
    )


def env_pair(value: str) -> tuple[str, str]:
    key, sep, val = value.partition("=")
    if not sep or not key or not key.replace("_", "a").isalnum() or key[0].isdigit():
        raise argparse.ArgumentTypeError(f"--env needs KEY=VALUE with a valid name, got {value!r}")
    return key, val


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="loopphase shim", description=plain(__doc__.split("\n")[0]))
    p.add_argument("--role", required=True, choices=("builder", "adversary", "orchestrator"),
                   help="the role of the agent it hosts")
    p.add_argument("--backend", required=True, choices=BACKENDS, help="the agent CLI to run")
    p.add_argument("--workdir", required=True, help="the agent's working copy")
    p.add_argument("--kickoff-file", help="kickoff prompt for cold starts")
    p.add_argument("--continuation-text", help="continuation prompt for warm starts")
    p.add_argument("--bootstrap-text", help="opencode: the one line typed after attaching")
    p.add_argument("--mode", choices=("cold", "warm"), default="cold", help="initial start")
    p.add_argument("--phase-index", type=int, help="the phase the agent is started for (reported in /v1/state)")
    p.add_argument("--phase-id", help="that phase's id (LOOPPHASE_PHASE for the agent)")
    p.add_argument("--model", help="model passed to the agent CLI")
    p.add_argument("--scenario", help="sim backend: scenario YAML")
    p.add_argument("--opencode-server", help="opencode backend: server URL to attach to")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default loopback; pods pass 0.0.0.0)")
    p.add_argument("--port", type=int, default=8790, help="port of the HTTP API (default 8790)")
    p.add_argument("--token-file", help="bearer token file (else $LOOPPHASE_SHIM_TOKEN)")
    p.add_argument("--state-dir", help="hook events, transcript (default <workdir>/.loopphase-shim)")
    p.add_argument("--tmux-socket", help="tmux -L socket name (default: unique per shim)")
    p.add_argument("--env", action="append", type=env_pair, default=[], metavar="KEY=VALUE",
                   help="an environment variable for the agent (repeatable)")
    p.add_argument("--no-start", action="store_true", help="start idle until a restart call")
    p.add_argument("--log-level", type=log_level, default=os.environ.get("LOOPPHASE_LOG_LEVEL", "INFO"),
                   help=f"one of {', '.join(LOG_LEVELS)} (default INFO, or $LOOPPHASE_LOG_LEVEL)")
    return p


MIN_TOKEN_CHARS = 24
TOKEN_ENV = "LOOPPHASE_SHIM_TOKEN"
PR_SET_DUMPABLE = 4


def read_token(args: argparse.Namespace) -> str:
    """The bearer token from ``--token-file`` or ``$LOOPPHASE_SHIM_TOKEN``.

    The variable is removed from this process's environment once read, so the agent (started
    later, as a child) never inherits it. Raises ValueError when missing or too short.
    """
    from_env = os.environ.pop(TOKEN_ENV, "").strip()
    if args.token_file:
        token = Path(args.token_file).read_text(encoding="utf-8").strip()
    else:
        token = from_env
    if not token:
        raise ValueError(f"no bearer token: give --token-file or set {TOKEN_ENV}")
    if len(token) < MIN_TOKEN_CHARS:
        raise ValueError(
            f"the bearer token is {len(token)} characters; use at least {MIN_TOKEN_CHARS} "
            "random ones (e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    return token


def make_non_dumpable() -> bool:
    """``prctl(PR_SET_DUMPABLE, 0)``: processes of the same uid (the agent) can no longer read
    this process's memory or ``/proc/<pid>/environ``, nor ptrace it. Linux only; returns
    whether it took effect (elsewhere the token file's permissions are the only guard)."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        log.warning("prctl(PR_SET_DUMPABLE, 0) failed: errno %d", ctypes.get_errno())
        return False
    return True


async def serve(args: argparse.Namespace, token: str) -> int:
    workdir = str(Path(args.workdir).resolve())
    state_dir = Path(args.state_dir or Path(workdir) / ".loopphase-shim").resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    cfg = AgentConfig(
        role=args.role,
        backend=args.backend,
        workdir=workdir,
        state_dir=state_dir,
        model=args.model,
        scenario=str(Path(args.scenario).resolve()) if args.scenario else None,
        opencode_server=args.opencode_server,
        bootstrap_text=args.bootstrap_text,
        env=dict(args.env),
    )
    socket_name = args.tmux_socket or f"loopphase-{args.role}-{uuid.uuid4().hex[:8]}"
    tmux = Tmux(socket_name, state_dir / "tmux.conf")
    tmux.write_conf()
    write_socket_name(state_dir, socket_name)  # for `loopphase attach` (and kubectl exec)
    host = AgentHost(
        cfg, tmux, __version__,
        kickoff_file=args.kickoff_file,
        continuation_text=args.continuation_text,
        phase_index=args.phase_index,
        phase_id=args.phase_id,
    )
    stop_event = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop_event.set)

    server = build_server(host, token, (args.host, args.port), loop)
    server.serve_in_thread()
    log.info("shim %s listening on %s:%d (tmux socket %s)", __version__, args.host, args.port,
             socket_name)
    tasks = [
        asyncio.create_task(host.poll_forever()),
        asyncio.create_task(TranscriptTail(state_dir / "transcript.log", from_end=True).run()),
    ]
    try:
        if not args.no_start:
            try:
                await host.start(args.mode)
            except (LaunchError, TmuxError, StopFailed) as exc:
                log.error("initial %s start failed (staying up, idle): %s", args.mode, exc)
        await stop_event.wait()
        log.info("signal received: stopping the agent and the tmux server")
    finally:
        for task in tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.to_thread(server.close)
        await host.shutdown()
    return 0


SOCKET_FILE = "tmux.socket"


def write_socket_name(state_dir: Path, socket_name: str) -> None:
    """Record the tmux socket name (``tmux -L NAME``) in ``state_dir/tmux.socket``.

    Only a name, no secret: it lets a human attach to the agent's screen (``loopphase attach``).
    """
    tmp = state_dir / f"{SOCKET_FILE}.tmp"
    tmp.write_text(socket_name + "\n", encoding="utf-8")
    tmp.replace(state_dir / SOCKET_FILE)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        token = read_token(args)
    except (OSError, ValueError) as exc:
        print(f"loopphase shim: {exc}", file=sys.stderr)
        return 2
    make_non_dumpable()
    try:
        return asyncio.run(serve(args, token))
    except OSError as exc:
        log.error("shim failed: %s", exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())

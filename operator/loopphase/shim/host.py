"""AgentHost: one tmux session running one agent CLI, with serialised send/restart/stop.

One asyncio.Lock covers send, restart and stop, so there are never two agent processes at once
and a line is never typed while the agent is being replaced. A request that finds the lock
taken is refused (``Busy``) instead of queued: the caller retries on its next tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from loopphase.shim import proctree
from loopphase.shim.adapters import AgentConfig, Launch, LaunchError, Mode, build_launch
from loopphase.shim.inputarea import dialog_title, text_pending
from loopphase.shim.protocol import HookEventInfo, RestartResult, SendResult, ShimState
from loopphase.shim.tmux import Tmux, TmuxError

log = logging.getLogger(__name__)

PASTE_SETTLE = 0.3  # the most we wait for the pasted text to show before the submit key
PASTE_SEEN_GRACE = 0.03  # after it shows: the TUI has taken the paste; a breath, then submit
PASTE_POLL = 0.02
SUBMIT_TRIES = 5
SUBMIT_VERIFY_WINDOW = 1.0
POLL_INTERVAL = 0.1
KILL_BUDGET = 15.0
HOOK_EVENTS_KEPT = 20
HOOK_EVENTS_LINES = 200  # lines of the events file looked at (the session id may be far back)
HOOK_EVENTS_TAIL = 256 * 1024  # bytes of the events file read, from its end



# The end of a hook's message is kept: the banner (and its reset) is the last thing said.
HOOK_MESSAGE_MAX = 2000


def hook_message(raw: dict[str, Any]) -> str | None:
    """The text a hook event carries: ``message`` (Notification), or for a StopFailure Claude
    Code's ``last_assistant_message`` (the error the CLI showed: the banner with its reset), its
    last HOOK_MESSAGE_MAX characters. A clean Stop's whole answer is not carried (it would ride
    along every state answer)."""
    keys = ["message"]
    if raw.get("hook_event_name") == "StopFailure":
        keys.append("last_assistant_message")
    for key in keys:
        value = raw.get(key)
        if isinstance(value, str) and value.strip():
            return value[-HOOK_MESSAGE_MAX:]
    return None

class Busy(RuntimeError):
    """A send, restart or stop is already in progress."""


class DialogOpen(RuntimeError):
    """A dialog is on screen: typed text would answer it (Enter picks its selected option)."""


class StopFailed(RuntimeError):
    """The old agent survived the kill; nothing new was started."""


def utcnow() -> datetime:
    return datetime.now(UTC)


class AgentHost:
    def __init__(
        self,
        cfg: AgentConfig,
        tmux: Tmux,
        version: str,
        kickoff_file: str | None = None,
        continuation_text: str | None = None,
        phase_index: int | None = None,
        phase_id: str | None = None,
    ) -> None:
        self.cfg = cfg
        self.tmux = tmux
        self.version = version
        self.kickoff_file = kickoff_file
        self.continuation_text = continuation_text
        self.phase_index = phase_index
        self.phase_id = phase_id
        self.lock = asyncio.Lock()
        self.sending = False
        self.pid: int | None = None
        self.started_at: datetime | None = None
        self.mode: Mode | None = None
        self.restarts = 0
        self.submit_key = "Enter"
        self.last_screen: str | None = None
        self.last_change_at: datetime | None = None
        self._tasks: list[asyncio.Task[None]] = []
        # The configuration error the last start was refused with (None after a good start).
        self.start_error: str | None = None

    # ---- prompts -------------------------------------------------------------------------
    def kickoff_text(self, override: str | None) -> str:
        if override is not None:
            return override
        if not self.kickoff_file:
            return ""
        try:
            return Path(self.kickoff_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise LaunchError(f"cannot read kickoff file {self.kickoff_file}: {exc}") from exc

    # ---- hook events ---------------------------------------------------------------------
    def hook_events(self) -> list[HookEventInfo]:
        """The events of the last ``HOOK_EVENTS_LINES`` lines of the hook events file.

        The agent can write that file: only its last ``HOOK_EVENTS_TAIL`` bytes are read (one
        huge line must not cost the shim its memory), and a line that is not an event of the
        expected shape (bad JSON, nested too deep, a number for ``session_id``, a time that is
        not one) is skipped and logged; it must not turn every ``/v1/state`` into a 500.
        """
        path = self.cfg.hook_events_file
        try:
            with path.open("rb") as fh:
                size = fh.seek(0, 2)
                fh.seek(max(0, size - HOOK_EVENTS_TAIL))
                data = fh.read(HOOK_EVENTS_TAIL)
        except FileNotFoundError:
            return []
        except OSError as exc:
            log.warning("hook events file %s unreadable: %s", path, exc)
            return []
        lines = data.decode("utf-8", errors="replace").splitlines()
        if size > HOOK_EVENTS_TAIL and lines:
            lines = lines[1:]  # the first line was cut by the tail: not an event
        events: list[HookEventInfo] = []
        for line in lines[-HOOK_EVENTS_LINES:]:
            try:
                raw = json.loads(line)
            except (ValueError, RecursionError):
                log.warning("skipping a malformed hook event line: %.80s", line)
                continue
            if not isinstance(raw, dict):
                continue
            error = raw.get("error_type") or raw.get("error") or raw.get("reason")
            try:
                event = HookEventInfo(
                    name=str(raw.get("hook_event_name") or raw.get("event") or "unknown"),
                    time=raw.get("receivedAt"),
                    session_id=raw.get("session_id"),
                    error_type=str(error) if error is not None else None,
                    message=hook_message(raw),
                )
            except ValidationError as exc:
                log.warning("skipping a hook event of the wrong shape (%s): %.80s",
                            "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                      for e in exc.errors()), line)
                continue
            events.append(event)
        return events

    def session_id(self, events: list[HookEventInfo] | None = None) -> str | None:
        for event in reversed(events if events is not None else self.hook_events()):
            if event.name == "SessionStart" and event.session_id:
                return event.session_id
        return None

    # ---- lifecycle (callers hold the lock) ----------------------------------------------
    async def _stop_locked(self, reason: str) -> None:
        info = await self.tmux.pane_info()
        if info and info.pid and not info.dead:
            log.info("stopping agent pid %d: %s", info.pid, reason)
            survivors = await asyncio.wait_for(
                asyncio.to_thread(proctree.kill_tree, info.pid), KILL_BUDGET
            )
            if survivors:
                raise StopFailed(f"agent processes survived SIGKILL: {survivors}")
        await self.tmux.kill_session()
        if await self.tmux.has_session():
            raise StopFailed("tmux session still present after kill-session")
        self.pid = None

    def _prepare(
        self, mode: Mode, kickoff: str | None, continuation: str | None,
        phase_index: int | None, phase_id: str | None,
    ) -> Launch:
        """Everything a start needs, checked before any agent is stopped. LaunchError when it
        cannot start (reported in /v1/state as ``startError`` until a start succeeds)."""
        try:
            if mode == "warm":
                prompt = continuation if continuation is not None else (self.continuation_text or "")
            else:
                prompt = self.kickoff_text(kickoff)
            session_id = self.session_id() if mode == "warm" else None
            return build_launch(self.cfg, mode, prompt, phase_index, phase_id, session_id)
        except LaunchError as exc:
            self.start_error = str(exc)
            raise

    async def _start_locked(
        self, mode: Mode, kickoff: str | None, continuation: str | None
    ) -> RestartResult:
        launch = self._prepare(mode, kickoff, continuation, self.phase_index, self.phase_id)
        return await self._launch_locked(mode, launch)

    async def _launch_locked(self, mode: Mode, launch: Launch) -> RestartResult:
        self.start_error = None
        Path(self.cfg.workdir).mkdir(parents=True, exist_ok=True)
        await self.tmux.new_session(launch.argv, self.cfg.workdir, launch.env)
        try:
            await self.tmux.pipe_to(self.cfg.state_dir / "transcript.log")
        except TmuxError as exc:
            log.warning("cannot pipe the pane to the transcript: %s", exc)
        info = await self.tmux.pane_info()
        self.pid = info.pid if info else None
        self.started_at = utcnow()
        self.mode = mode
        self.submit_key = launch.submit_key
        self.last_screen = None
        self.last_change_at = self.started_at
        log.info(
            "started %s agent (%s start, phase %s/%s) pid %s",
            self.cfg.backend, mode, self.phase_index, self.phase_id, self.pid,
        )
        if launch.after_start_line:
            self._spawn(self._type_when_ready(launch.after_start_line))
        return RestartResult(pid=self.pid, started_at=self.started_at, mode=mode)

    async def _type_when_ready(self, line: str) -> None:
        """opencode: wait until the TUI drew something, then type the bootstrap line."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30.0
        while loop.time() < deadline:
            try:
                if (await self.tmux.capture()).strip():
                    break
            except TmuxError as exc:
                log.warning("waiting for the agent screen: %s", exc)
            await asyncio.sleep(0.5)
        await asyncio.sleep(1.0)  # let the TUI finish its first draw before typing
        for _ in range(20):
            try:
                result = await self.send(line, None)
                log.info("bootstrap line sent: accepted=%s %s", result.accepted, result.detail)
                return
            except Busy:
                await asyncio.sleep(0.5)
            except DialogOpen as exc:
                log.error("bootstrap line not sent: %s", exc)
                return
        log.error("bootstrap line not sent: the host stayed busy")

    def _spawn(self, coro: object) -> None:
        task = asyncio.ensure_future(coro)  # type: ignore[arg-type]
        self._tasks.append(task)
        task.add_done_callback(lambda t: self._tasks.remove(t) if t in self._tasks else None)

    # ---- public operations ---------------------------------------------------------------
    async def start(self, mode: Mode) -> RestartResult:
        async with self.lock:
            await self._stop_locked("clearing a leftover session before the first start")
            return await self._start_locked(mode, None, None)

    async def restart(
        self,
        mode: Mode,
        kickoff: str | None = None,
        continuation: str | None = None,
        phase_index: int | None = None,
        phase_id: str | None = None,
    ) -> RestartResult:
        if self.lock.locked():
            raise Busy("a send, restart or stop is in progress")
        async with self.lock:
            # Build the whole launch (prompt, argv, files) before killing anything: a start
            # that cannot happen must leave the running agent alone.
            new_index = phase_index if phase_index is not None else self.phase_index
            new_id = phase_id if phase_id is not None else self.phase_id
            launch = self._prepare(mode, kickoff, continuation, new_index, new_id)
            await self._stop_locked(f"{mode} restart requested")
            self.phase_index, self.phase_id = new_index, new_id
            result = await self._launch_locked(mode, launch)
            self.restarts += 1
            return result

    async def stop(self) -> None:
        if self.lock.locked():
            raise Busy("a send, restart or stop is in progress")
        async with self.lock:
            await self._stop_locked("stop requested")

    async def send(self, text: str, submit: str | None) -> SendResult:
        if self.lock.locked():
            raise Busy("a send, restart or stop is in progress")
        async with self.lock:
            self.sending = True
            try:
                return await self._deliver(text, submit or self.submit_key)
            finally:
                self.sending = False

    async def _deliver(self, text: str, submit: str) -> SendResult:
        info = await self.tmux.pane_info()
        if not info or info.dead:
            return SendResult(accepted=False, detail="agent is not running", tries=0)
        dialog = dialog_title(await self.tmux.capture())
        if dialog is not None:
            raise DialogOpen(
                f"not typing: a dialog is on screen ({dialog}); typed text would answer it. "
                "Answer it in the agent's terminal, then send again"
            )
        log.info("typing %d chars into the agent, then %s", len(text), submit)
        await self.tmux.send_literal(text)
        loop = asyncio.get_running_loop()
        await self._settle_paste(text, loop.time() + PASTE_SETTLE)
        for attempt in range(1, SUBMIT_TRIES + 1):
            await self.tmux.send_key(submit)
            deadline = loop.time() + SUBMIT_VERIFY_WINDOW
            while loop.time() < deadline:
                await asyncio.sleep(POLL_INTERVAL)
                if not text_pending(await self.tmux.capture(), text):
                    log.info("send delivered after %d submit(s)", attempt)
                    return SendResult(
                        accepted=True, detail=f"submitted ({attempt} submit key(s))", tries=attempt
                    )
            log.warning("text still in the input area after submit %d; retrying", attempt)
        return SendResult(
            accepted=False,
            detail=f"text still in the input area after {SUBMIT_TRIES} submits",
            tries=SUBMIT_TRIES,
        )

    async def _settle_paste(self, text: str, deadline: float) -> None:
        """Wait until the pasted text shows in the input area (the TUI has taken it), or until
        ``deadline`` (a CLI that folds a long paste into "[Pasted text]" never shows it): a
        submit key sent while the paste is still being read can be swallowed into it."""
        loop = asyncio.get_running_loop()
        while loop.time() < deadline:
            await asyncio.sleep(PASTE_POLL)
            if text_pending(await self.tmux.capture(), text):
                await asyncio.sleep(PASTE_SEEN_GRACE)
                return

    # ---- observation ---------------------------------------------------------------------
    def _note_screen(self, screen: str) -> None:
        if screen != self.last_screen:
            self.last_screen = screen
            self.last_change_at = utcnow()

    async def poll_once(self) -> None:
        if not await self.tmux.has_session():
            return
        self._note_screen(await self.tmux.capture())

    async def poll_forever(self, interval: float = 0.5) -> None:
        while True:
            try:
                await self.poll_once()
            except TmuxError as exc:
                log.warning("pane poll failed: %s", exc)
            await asyncio.sleep(interval)

    async def state(self, lines: int) -> ShimState:
        info = await self.tmux.pane_info()
        pane = ""
        exit_status = None
        if info is not None:
            screen = await self.tmux.capture()
            self._note_screen(screen)
            full = await self.tmux.capture(lines)
            rows = full.rstrip("\n").split("\n")
            while rows and not rows[-1].strip():
                rows.pop()
            pane = "\n".join(rows[-lines:])
            exit_status = info.dead_status
        alive = bool(info and not info.dead and info.pid)
        now = utcnow()
        events = self.hook_events()
        return ShimState(
            version=self.version,
            role=self.cfg.role,
            backend=self.cfg.backend,
            phase_index=self.phase_index,
            phase_id=self.phase_id,
            alive=alive,
            pid=info.pid if alive and info else None,
            started_at=self.started_at,
            mode=self.mode,
            restarts=self.restarts,
            exit_status=exit_status,
            pane=pane,
            last_change_at=self.last_change_at,
            seconds_since_change=(
                (now - self.last_change_at).total_seconds() if self.last_change_at else None
            ),
            session_id=self.session_id(events),
            hook_events=events[-HOOK_EVENTS_KEPT:],
            send_in_flight=self.sending,
            start_error=self.start_error,
        )

    async def shutdown(self) -> None:
        """Stop the agent (verified), kill the tmux server, cancel background tasks."""
        for task in list(self._tasks):
            task.cancel()
        try:
            async with asyncio.timeout(KILL_BUDGET + 10):
                async with self.lock:
                    await self._stop_locked("shim shutting down")
        except (TimeoutError, StopFailed, TmuxError) as exc:
            log.error("agent stop during shutdown failed: %s", exc)
        server_pid = await self.tmux.server_pid()
        await self.tmux.kill_server()
        if server_pid:
            survivors = await asyncio.to_thread(proctree.kill_tree, server_pid, 2.0, 2.0)
            if survivors:
                log.error("tmux server processes survived: %s", survivors)
        if await self.tmux.server_pid() is None:  # nothing answers on it any more
            self.tmux.remove_socket()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._tasks, return_exceptions=True)
        log.info("shutdown complete: agent stopped, tmux server gone")

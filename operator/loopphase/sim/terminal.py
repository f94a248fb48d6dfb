"""The simulated agent's screen and keyboard.

Layout, like the real CLIs: transcript lines scroll above a two-line footer, a status line
(the spinner "⠋ Working… (esc to interrupt)" while a turn runs, blank otherwise) and the
prompt line "> <typed text>" at the very bottom. The terminal runs without canonical mode and
echo, so the program itself draws what is typed and clears the prompt line on submit (which is
how the shim verifies delivery: the text leaves the input area).

Every submitted line is logged as one JSON line to the input log, with a timestamp.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import sys
import termios
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

log = logging.getLogger(__name__)

SPINNER_FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
CLEAR_LINE = "\r\x1b[2K"
UP = "\x1b[1A"


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class InputLog:
    """Append-only JSON-lines log of what the agent received."""

    def __init__(self, path: Path | None, role: str, phase: str) -> None:
        self.path = path
        self.role = role
        self.phase = phase
        self._lock = threading.Lock()

    def record(self, kind: str, **fields: Any) -> None:
        if self.path is None:
            return
        entry = {"kind": kind, "time": utc_now_iso(), "role": self.role, "phase": self.phase}
        entry.update(fields)
        line = json.dumps(entry, ensure_ascii=False) + "\n"
        with self._lock:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as fh:
                    fh.write(line)
            except OSError as exc:
                log.error("input log %s not writable: %s", self.path, exc)


class Screen:
    """Thread-safe drawing of transcript lines above a status line and a prompt line."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self._lock = threading.RLock()
        self.status = ""
        self.typed = ""
        self._drawn = False

    def _clear_footer(self) -> str:
        return (CLEAR_LINE + UP + CLEAR_LINE) if self._drawn else ""

    def _footer(self) -> str:
        return f"{self.status}\r\n> {self.typed}"

    def _write(self, data: str) -> None:
        try:
            self.out.write(data)
            self.out.flush()
        except (OSError, ValueError) as exc:
            log.warning("screen write failed: %s", exc)

    def start(self) -> None:
        with self._lock:
            self._write(self._footer())
            self._drawn = True

    def print(self, *lines: str) -> None:
        with self._lock:
            body = "".join(f"{line}\r\n" for line in lines)
            self._write(self._clear_footer() + body + self._footer())
            self._drawn = True

    def set_status(self, status: str) -> None:
        with self._lock:
            if status == self.status and self._drawn:
                return
            self.status = status
            self._write(self._clear_footer() + self._footer())
            self._drawn = True

    def set_typed(self, typed: str) -> None:
        with self._lock:
            self.typed = typed
            self._write(CLEAR_LINE + f"> {typed}")


class Keyboard:
    """Reads stdin on a daemon thread; complete lines go to ``lines`` and the input log."""

    def __init__(self, screen: Screen, input_log: InputLog, stream: TextIO | None = None) -> None:
        self.screen = screen
        self.input_log = input_log
        self.stream = stream or sys.stdin
        self.lines: queue.Queue[tuple[datetime, str]] = queue.Queue()
        self._saved: list[Any] | None = None
        self._thread = threading.Thread(target=self._run, name="sim-keyboard", daemon=True)

    def start(self) -> None:
        self._raw_mode()
        self._thread.start()

    def _raw_mode(self) -> None:
        try:
            fd = self.stream.fileno()
            if not os.isatty(fd):
                return
            self._saved = termios.tcgetattr(fd)
            attrs = termios.tcgetattr(fd)
            attrs[3] &= ~(termios.ICANON | termios.ECHO)  # lflag: no line buffering, no echo
            attrs[6][termios.VMIN] = 1
            attrs[6][termios.VTIME] = 0
            termios.tcsetattr(fd, termios.TCSANOW, attrs)
        except (OSError, ValueError, termios.error) as exc:
            log.warning("cannot switch the terminal to raw input: %s", exc)

    def restore(self) -> None:
        if self._saved is None:
            return
        try:
            termios.tcsetattr(self.stream.fileno(), termios.TCSANOW, self._saved)
        except (OSError, ValueError, termios.error) as exc:
            log.warning("cannot restore the terminal: %s", exc)

    def _submit(self, text: str) -> None:
        self.input_log.record("input", text=text)
        self.screen.set_typed("")
        if text:
            self.screen.print(f"> {text}")
        self.lines.put((datetime.now(UTC), text))

    def _run(self) -> None:
        buf = ""
        last_cr = False
        fd = self.stream.fileno()
        while True:
            try:
                chunk = os.read(fd, 4096)
            except OSError as exc:
                log.warning("stdin read failed: %s", exc)
                return
            if not chunk:
                if buf:
                    self._submit(buf)
                return
            for ch in chunk.decode("utf-8", errors="replace"):
                if ch == "\n" and last_cr:
                    last_cr = False
                    continue
                last_cr = ch == "\r"
                if ch in "\r\n":
                    self._submit(buf)
                    buf = ""
                elif ch in "\x7f\x08":
                    buf = buf[:-1]
                    self.screen.set_typed(buf)
                elif ch == "\x1b" or (ch < " " and ch != "\t"):
                    continue  # escape / control keys: ignored like a busy CLI would
                else:
                    buf += ch
                    self.screen.set_typed(buf)

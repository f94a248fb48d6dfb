"""Async wrapper around one tmux server (its own socket) hosting one session.

Every call is an argv list with a timeout. The agent command is given to ``new-session`` as
several arguments, which tmux execs directly without a shell (verified with tmux 3.3a: a
single argument would go through ``sh -c``, so one-element commands are refused).
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

TMUX_TIMEOUT = 5.0
WIDTH = 220
HEIGHT = 50
HISTORY_LIMIT = 5000
SESSION = "agent"

TMUX_CONF = f"""\
set-option -g history-limit {HISTORY_LIMIT}
set-window-option -g remain-on-exit on
set-option -s exit-empty off
set-option -g status off
set-option -g default-size {WIDTH}x{HEIGHT}
"""
# window-size manual (attaching clients must not resize the pane) is set per window after
# new-session: in the config file tmux 3.3a's server exits when it is set globally.

# Never hand the shim's secret to the agent through the tmux server's environment.
SCRUBBED_ENV = ("LOOPPHASE_SHIM_TOKEN",)


class TmuxError(RuntimeError):
    pass


@dataclass(frozen=True)
class PaneInfo:
    pid: int | None
    dead: bool
    dead_status: int | None


class Tmux:
    def __init__(self, socket_name: str, conf_path: Path) -> None:
        self.socket_name = socket_name
        self.conf_path = conf_path

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
        env.pop("TMUX", None)
        return env

    async def run(self, *args: str, timeout: float = TMUX_TIMEOUT, check: bool = True) -> str:
        argv = ["tmux", "-L", self.socket_name, "-f", str(self.conf_path), *args]
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self._env(),
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError as exc:
            proc.kill()
            await proc.wait()
            raise TmuxError(f"tmux {args[0]} timed out after {timeout}s") from exc
        if check and proc.returncode != 0:
            raise TmuxError(f"tmux {args[0]} failed ({proc.returncode}): {err.decode().strip()}")
        return out.decode("utf-8", errors="replace")

    def write_conf(self) -> None:
        self.conf_path.parent.mkdir(parents=True, exist_ok=True)
        self.conf_path.write_text(TMUX_CONF, encoding="utf-8")

    async def new_session(self, argv: list[str], cwd: str, env: dict[str, str]) -> None:
        if len(argv) < 2:
            raise TmuxError("refusing a one-element command: tmux would run it through sh -c")
        env_args: list[str] = []
        for key, value in env.items():
            env_args += ["-e", f"{key}={value}"]
        await self.run(
            "new-session", "-d", "-s", SESSION, "-x", str(WIDTH), "-y", str(HEIGHT),
            "-c", cwd, *env_args, *argv,
        )
        await self.run("set-window-option", "-t", SESSION, "window-size", "manual", check=False)

    async def has_session(self) -> bool:
        out = await self.run("list-sessions", "-F", "#{session_name}", check=False)
        return SESSION in out.split()

    async def kill_session(self) -> None:
        await self.run("kill-session", "-t", SESSION, check=False)

    async def kill_server(self) -> None:
        await self.run("kill-server", check=False)

    def socket_path(self) -> Path:
        """Where the server's socket is: ``$TMUX_TMPDIR`` (default /tmp) ``/tmux-<uid>/<name>``,
        as tmux computes it for ``-L <name>``."""
        base = self._env().get("TMUX_TMPDIR") or "/tmp"
        return Path(base) / f"tmux-{os.getuid()}" / self.socket_name

    def remove_socket(self) -> bool:
        """Remove this server's socket file, by its exact path, once the server is gone (a
        server killed, or one that exited with its last session, leaves it behind). Only a
        socket is removed; True when one was."""
        path = self.socket_path()
        try:
            if not stat.S_ISSOCK(path.lstat().st_mode):
                log.warning("%s is not a socket; left alone", path)
                return False
            path.unlink()
        except FileNotFoundError:
            return False
        except OSError as err:
            log.warning("cannot remove the tmux socket %s: %s", path, err)
            return False
        log.info("removed the tmux socket %s", path)
        return True

    async def server_pid(self) -> int | None:
        out = await self.run("display-message", "-p", "#{pid}", check=False)
        return int(out.strip()) if out.strip().isdigit() else None

    async def pane_info(self) -> PaneInfo | None:
        out = await self.run(
            "display-message", "-p", "-t", SESSION,
            "#{pane_pid} #{pane_dead} #{pane_dead_status}", check=False,
        )
        parts = out.split()
        if not parts or not parts[0].isdigit():
            return None
        dead = len(parts) > 1 and parts[1] == "1"
        status = int(parts[2]) if dead and len(parts) > 2 and parts[2].lstrip("-").isdigit() else None
        return PaneInfo(pid=int(parts[0]), dead=dead, dead_status=status)

    async def capture(self, lines: int | None = None) -> str:
        """Visible pane (plus ``lines`` of history when given), wrapped lines joined."""
        args = ["capture-pane", "-p", "-J", "-t", SESSION]
        if lines is not None and lines > HEIGHT:
            args += ["-S", str(-(lines - HEIGHT))]
        return await self.run(*args)

    async def send_literal(self, text: str) -> None:
        await self.run("send-keys", "-t", SESSION, "-l", "--", text)

    async def send_key(self, key: str) -> None:
        await self.run("send-keys", "-t", SESSION, key)

    async def pipe_to(self, path: Path) -> None:
        """Append raw pane output to ``path`` (pipe-pane runs one fixed, quoted command)."""
        import shlex

        await self.run("pipe-pane", "-t", SESSION, f"cat >> {shlex.quote(str(path))}")

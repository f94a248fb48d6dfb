"""Run git as an argv list with a hard timeout, a non-interactive env and redacted errors.

Commands are spawned by GitPython's ``Git.execute`` (argv list, never a shell; its executable
lookup and environment handling) as a process we wait on with a kill timeout. GitPython's own
``kill_after_timeout`` is not used: it kills git and the descendants it can find with
``pgrep``/``ps`` (absent from slim images), while git runs here in a session of its own
(``start_new_session``) and a timeout SIGKILLs that whole process group, ``git-remote-https``,
``ssh`` and friends included. Errors are rebuilt from git's stderr and redacted
(``git/redact.py``): GitPython's own messages quote the command line, and so the URL.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from git.cmd import Git
from git.exc import GitCommandNotFound

from loopphase.git.errors import GitRemoteError, GitTimeoutError
from loopphase.git.redact import redact

log = logging.getLogger(__name__)

_SECRET_KEY_HINTS = ("TOKEN", "PASSWORD", "SECRET", "GIT_CONFIG_VALUE_", "AUTH")


@dataclass(frozen=True)
class GitResult:
    args: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: bytes

    @property
    def text(self) -> str:
        return self.stdout.decode("utf-8", errors="replace")


def config_env(config: Mapping[str, str]) -> dict[str, str]:
    """Env vars passing git config (e.g. ``http.extraHeader``) without putting it in argv.

    Uses ``GIT_CONFIG_COUNT``/``GIT_CONFIG_KEY_n``/``GIT_CONFIG_VALUE_n`` (git >= 2.31), so a
    token never shows in ``ps`` output or in an error message quoting the command.
    """
    env: dict[str, str] = {"GIT_CONFIG_COUNT": str(len(config))}
    for i, (key, value) in enumerate(config.items()):
        env[f"GIT_CONFIG_KEY_{i}"] = key
        env[f"GIT_CONFIG_VALUE_{i}"] = value
    return env


def build_env(extra: Mapping[str, str] | None) -> dict[str, str]:
    """The process env for git: caller's extras over ours, always non-interactive."""
    env = dict(os.environ)
    env.update(extra or {})
    env["GIT_TERMINAL_PROMPT"] = "0"  # a missing credential fails fast, never prompts
    env["GCM_INTERACTIVE"] = "never"
    env["LC_ALL"] = "C"
    if "GIT_SSH_COMMAND" not in env and "GIT_SSH" not in env:
        env["GIT_SSH_COMMAND"] = "ssh -o BatchMode=yes"
    return env


def secret_values(env: Mapping[str, str] | None) -> list[str]:
    """Values of caller-supplied env vars that look like credentials (for redaction)."""
    return [
        value
        for key, value in (env or {}).items()
        if value and any(hint in key.upper() for hint in _SECRET_KEY_HINTS)
    ]


class GitRunner:
    """Runs ``git <args>``; every call has a timeout; every error message is redacted."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 20.0,
        env: Mapping[str, str] | None = None,
        git: str = "git",
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.git = git
        self._env = build_env(env)
        self._secrets = secret_values(env)

    def redact(self, text: str) -> str:
        return redact(text, self.url, self._secrets)

    def run(
        self,
        args: Sequence[str],
        *,
        cwd: Path | None = None,
        timeout: float | None = None,
    ) -> GitResult:
        """Run git; returns the result whatever the exit code; raises only on timeout/spawn."""
        argv = [self.git, *args]
        limit = self.timeout if timeout is None else timeout
        try:
            handle = Git(str(cwd) if cwd else None).execute(
                argv, as_process=True, env=self._env,
                start_new_session=True,  # so a timeout kills git's helpers too
            )
        except GitCommandNotFound as exc:
            raise GitRemoteError(self.redact(f"cannot run git {args[0]}: {exc}")) from None
        proc: subprocess.Popen[bytes] = handle.proc
        try:
            out, err = proc.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            _kill(proc)
            raise GitTimeoutError(
                self.redact(f"git {args[0]} timed out after {limit:g}s ({self.url})")
            ) from None
        return GitResult(tuple(args), int(proc.returncode), out or b"", err or b"")

    def check(
        self,
        args: Sequence[str],
        *,
        cwd: Path | None = None,
        timeout: float | None = None,
    ) -> GitResult:
        """Run git and raise a redacted GitRemoteError on a non-zero exit."""
        result = self.run(args, cwd=cwd, timeout=timeout)
        if result.returncode != 0:
            raise GitRemoteError(self.describe_failure(result))
        return result

    def describe_failure(self, result: GitResult) -> str:
        """``git <cmd> failed (exit N): <last stderr lines>``, redacted, argv not quoted."""
        lines = [ln for ln in result.stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
        detail = " | ".join(lines[-3:]) or "no error output"
        return self.redact(f"git {result.args[0]} failed (exit {result.returncode}): {detail}")


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL git's whole process group (it leads a session of its own), then reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        log.debug("git process group %s already gone", proc.pid)
    try:
        proc.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        log.warning("git process %s did not exit after SIGKILL", proc.pid)

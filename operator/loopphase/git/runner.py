"""Run git as an argv list with a hard timeout, a non-interactive env and redacted errors."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

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
        stdin: bytes | None = None,
        timeout: float | None = None,
    ) -> GitResult:
        """Run git; returns the result whatever the exit code; raises only on timeout/spawn."""
        argv = [self.git, *args]
        limit = self.timeout if timeout is None else timeout
        try:
            proc = subprocess.Popen(  # argv list, never a shell
                argv,
                cwd=cwd,
                env=self._env,
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # so a timeout kills git's helpers too
            )
        except OSError as exc:
            raise GitRemoteError(self.redact(f"cannot run git {args[0]}: {exc}")) from None
        try:
            out, err = proc.communicate(stdin, timeout=limit)
        except subprocess.TimeoutExpired:
            self._kill(proc)
            raise GitTimeoutError(
                self.redact(f"git {args[0]} timed out after {limit:g}s ({self.url})")
            ) from None
        return GitResult(tuple(args), proc.returncode, out, err)

    def check(
        self,
        args: Sequence[str],
        *,
        cwd: Path | None = None,
        stdin: bytes | None = None,
        timeout: float | None = None,
    ) -> GitResult:
        """Run git and raise a redacted GitRemoteError on a non-zero exit."""
        result = self.run(args, cwd=cwd, stdin=stdin, timeout=timeout)
        if result.returncode != 0:
            raise GitRemoteError(self.describe_failure(result))
        return result

    def describe_failure(self, result: GitResult) -> str:
        """``git <cmd> failed (exit N): <last stderr lines>``, redacted, argv not quoted."""
        lines = [ln for ln in result.stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
        detail = " | ".join(lines[-3:]) or "no error output"
        return self.redact(f"git {result.args[0]} failed (exit {result.returncode}): {detail}")

    @staticmethod
    def _kill(proc: subprocess.Popen[bytes]) -> None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            log.debug("git process group %s already gone", proc.pid)
        try:
            proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            log.warning("git process %s did not exit after SIGKILL", proc.pid)

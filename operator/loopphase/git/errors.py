"""Errors raised by the git layer. Messages are always redacted before construction."""

from __future__ import annotations


class GitRemoteError(RuntimeError):
    """A git call failed (remote unreachable, timeout, bad exit). The message is redacted."""


class GitTimeoutError(GitRemoteError):
    """A git call exceeded its timeout and was killed."""

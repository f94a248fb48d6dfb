"""Credentials never leak into errors, logs or status; git never prompts; calls time out."""

from __future__ import annotations

import logging
import socket
import time
from pathlib import Path

import pytest
from loopphase.git import GitRemoteError, GitTimeoutError, RemoteWatcher, config_env, redact
from loopphase.git.runner import GitRunner, build_env

TOKEN = "ghp_s3cr3tT0kenValue"


def test_redact_userinfo_forms() -> None:
    url = f"https://bob:{TOKEN}@git.example.com/org/repo.git"
    assert redact(f"fatal: unable to access '{url}/': boom", url) == (
        "fatal: unable to access 'https://***@git.example.com/org/repo.git/': boom"
    )
    token_user = f"https://{TOKEN}@host/x.git"
    assert TOKEN not in redact(f"bad {token_user} and bare {TOKEN}", token_user)
    encoded = "https://bob:p%40ss%3Aword99@host/x"
    out = redact("user 'bob:p@ss:word99' and p@ss:word99 and p%40ss%3Aword99", encoded)
    assert "p@ss:word99" not in out and "p%40ss%3Aword99" not in out
    assert redact("Authorization: Basic Ym9iOnRva2Vu", None) == "Authorization: ***"
    assert redact(f"header {TOKEN}", None, [TOKEN]) == "header ***"
    assert redact("ssh://git@github.com/x", "ssh://git@github.com/x") == "ssh://***@github.com/x"
    assert redact("nothing secret here", "https://host/x") == "nothing secret here"


def test_credentials_in_url_never_in_error_or_logs(tmp_path: Path, caplog) -> None:
    url = f"http://bob:{TOKEN}@127.0.0.1:9/org/repo.git"  # port 9: connection refused
    w = RemoteWatcher(url, "main", tmp_path / "cache", timeout=10)
    with caplog.at_level(logging.DEBUG, logger="loopphase.git"):
        obs = w.observe(None, ["README.md"])
        assert not obs.reachable and obs.error
        w.backoff.success()  # allow the next call through
        with pytest.raises(GitRemoteError) as info:
            w.head()
    for text in (obs.error, str(info.value), caplog.text, repr(w), str(w.cache.path)):
        assert TOKEN not in text
        assert "bob:" not in text


def test_credentials_redacted_from_our_own_messages(tmp_path: Path) -> None:
    """git strips userinfo itself; our timeout message quotes the URL, so it must be redacted."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)  # accepts connections, never answers: git hangs until our timeout
    try:
        port = server.getsockname()[1]
        url = f"http://bob:{TOKEN}@127.0.0.1:{port}/repo.git"
        w = RemoteWatcher(url, "main", tmp_path / "cache", timeout=0.5)
        obs = w.observe(None, [])
    finally:
        server.close()
    assert not obs.reachable
    assert obs.error == f"git ls-remote timed out after 0.5s (http://***@127.0.0.1:{port}/repo.git)"


def test_auth_header_from_env_not_in_errors(tmp_path: Path) -> None:
    env = config_env({"http.extraHeader": f"Authorization: Bearer {TOKEN}"})
    assert env["GIT_CONFIG_COUNT"] == "1"
    w = RemoteWatcher("http://127.0.0.1:9/repo.git", "main", tmp_path / "c", env=env)
    obs = w.observe(None, [])
    assert not obs.reachable and TOKEN not in (obs.error or "")
    assert TOKEN in w.runner._env["GIT_CONFIG_VALUE_0"]  # it is passed via env, not argv


def test_env_is_non_interactive() -> None:
    env = build_env({"GIT_ASKPASS": "/bin/false"})
    assert env["GIT_TERMINAL_PROMPT"] == "0"
    assert env["GIT_ASKPASS"] == "/bin/false"
    assert "BatchMode=yes" in env["GIT_SSH_COMMAND"]


def test_every_call_has_a_timeout_and_kills_the_process() -> None:
    runner = GitRunner(f"https://u:{TOKEN}@h/x", timeout=0.3, git="sleep")
    start = time.monotonic()
    with pytest.raises(GitTimeoutError) as info:
        runner.run(["30"])
    assert time.monotonic() - start < 10
    assert "timed out after 0.3s" in str(info.value)
    assert TOKEN not in str(info.value)


def test_missing_git_binary_is_a_remote_error() -> None:
    runner = GitRunner("https://h/x", git="/nonexistent/git-binary")
    with pytest.raises(GitRemoteError, match="cannot run git"):
        runner.run(["ls-remote"])

"""Nothing that leaves the process carries a credential or a live terminal escape (hardening
faults 1 and 9): the shared scrubber, a real local run against a credential URL, and a real
commit subject carrying escape sequences on its way into status."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
from loopphase.api.spec import LoopPhaseSpec
from loopphase.api.status import LoopPhaseStatus
from loopphase.controller.tick import _scrubbed_git
from loopphase.core.actions import EmitEvent
from loopphase.core.observations import AgentObservation, Observations
from loopphase.core.reconcile import reconcile
from loopphase.git.watcher import RemoteWatcher
from loopphase.operator.events import event_for
from loopphase.outbound import ScrubFilter, scrub, url_credentials

from tests.git.gitwatch_helpers import Remote
from tests.git.leak_helpers import run_locally_with_repo_url

SECRETS = ("p@ss-w0rd-XYZ", "w0rd-XYZ", "TOKEN-QWERTY-123")
LEAKY_URL = "http://builder:p@ss-w0rd-XYZ@127.0.0.1:9/r.git?access_token=TOKEN-QWERTY-123"


@pytest.mark.parametrize(("text", "gone", "kept"), [
    ("clone https://u:p@ss@host.example/r.git failed", "ss@host", "https://***@host.example/r.git"),
    ("GET https://h.example/r.git?access_token=abc123def&x=1", "abc123def", "access_token=***&x=1"),
    ("https://h.example/r.git?foo=1&private_token=glpat-XYZ", "glpat-XYZ", "private_token=***"),
    ("Authorization: Bearer sk-ant-123456", "sk-ant-123456", "Authorization: ***"),
    ("subject \x1b]52;c;SGVsbG8=\x07 and \x1b[2K\r", "\x1b", "\\x1b]52;c;SGVsbG8=\\x07"),
    ("C1 CSI \x9b2J and DEL \x7f", "\x9b", "\\x9b2J"),
])
def test_scrub_masks_credentials_and_shows_controls(text: str, gone: str, kept: str) -> None:
    out = scrub(text)
    assert gone not in out and kept in out, out
    assert scrub(out) == out  # idempotent: scrubbing twice changes nothing


def test_url_credentials_are_named_for_the_validation_warning() -> None:
    assert url_credentials(LEAKY_URL) == ["a password in the URL's user part",
                                          "a token in the URL's query string"]
    assert url_credentials("https://github.com/o/r.git") == []
    assert url_credentials("ssh://git@github.com/o/r.git") == []


def test_log_filter_scrubs_formatted_messages(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("loopphase.test.outbound")
    caplog.handler.addFilter(ScrubFilter())
    with caplog.at_level(logging.INFO):
        logger.info("fetch %s: %s", LEAKY_URL, "\x1b[2Kerased")
    assert not any(s in caplog.text for s in SECRETS) and "\x1b" not in caplog.text
    assert "127.0.0.1:9" in caplog.text and "\\x1b[2K" in caplog.text


def test_local_run_with_credentials_in_the_url_leaks_them_nowhere(tmp_path: Path) -> None:
    result = run_locally_with_repo_url(tmp_path, LEAKY_URL)
    assert "warning: spec.repo.url carries a password" in result.validate_stderr
    assert "127.0.0.1:9" in result.everything  # the failing clone/ls-remote was reported...
    assert result.leaks(SECRETS) == []  # ...without its secrets


def test_escape_sequences_in_a_real_commit_subject_never_reach_status(
    remote: Remote, tmp_path: Path
) -> None:
    spec = LoopPhaseSpec.model_validate({
        "repo": {"url": remote.url},
        "phases": [{"id": "p1", "plan": "p1.md", "statusFile": "S1.md"}],
    })
    watcher = RemoteWatcher(remote.url, "main", tmp_path / "cache")
    cursor = watcher.observe(None, []).head
    remote.commit("claim(p1): gate 1 \x1b]52;c;cm0gLXJmIH4=\x07\x1b[2K\rall green")
    raw = watcher.observe(cursor, [])
    assert "\x1b" in raw.commits[-1].subject  # git hands the escapes over as they were pushed
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    status = LoopPhaseStatus.model_validate({"current": {"index": 0, "id": "p1"},
                                             "handoff": {"lastSeenSha": cursor}})
    obs = Observations(agents={"builder": AgentObservation(role="builder", present=False),
                               "adversary": AgentObservation(role="adversary", present=False)},
                       git=_scrubbed_git(raw))
    actions, new = reconcile(spec, status, obs, now)
    wire = new.model_dump_json()
    assert "\\\\x1b]52;c;" in wire and "\\u001b" not in wire and "\\r" not in wire
    pings = [p.reason for p in new.handoff.pending_pings]
    assert any("claim commit" in p and "\\x1b" in p for p in pings), pings
    for action in actions:
        if isinstance(action, EmitEvent):
            assert "\x1b" not in event_for(action, True, "").message

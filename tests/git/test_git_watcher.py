"""RemoteWatcher against a real bare repository."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from gitwatch_helpers import FakeClock, Remote, count_git_calls, git
from loopphase.core.files import candidates as status_file_candidates
from loopphase.core.files import resolve as resolve_status_file
from loopphase.core.observations import Commit
from loopphase.git import GitRemoteError, RemoteWatcher

STATUS = "machine-docs/STATUS-1.md"
INBOX = "machine-docs/ADVERSARY-INBOX.md"


def watcher_for(remote: Remote, tmp_path: Path, **kwargs: object) -> RemoteWatcher:
    return RemoteWatcher(remote.url, "main", tmp_path / "cache", timeout=20, **kwargs)  # type: ignore[arg-type]


def test_baseline_first_observe_lists_no_commits(remote: Remote, tmp_path: Path) -> None:
    remote.commit("claim: gate 1")
    w = watcher_for(remote, tmp_path)
    obs = w.observe(None, ["README.md"])
    assert obs.reachable and obs.error is None
    assert obs.head == remote.sha()
    assert obs.commits == ()
    assert not obs.force_pushed
    assert obs.files == {"README.md": "hello\n"}
    assert w.head() == remote.sha()


def test_new_commits_listed_oldest_first_with_subjects(remote: Remote, tmp_path: Path) -> None:
    w = watcher_for(remote, tmp_path)
    cursor = w.observe(None, []).head
    shas = [remote.commit(s) for s in ("claim: gate A", "review: gate A fails", "fix things")]
    obs = w.observe(cursor, [])
    assert obs.head == shas[-1]
    assert obs.commits == (
        Commit(shas[0], "claim: gate A"),
        Commit(shas[1], "review: gate A fails"),
        Commit(shas[2], "fix things"),
    )
    assert w.observe(obs.head, []).commits == ()


def test_commit_list_is_capped_to_newest(remote: Remote, tmp_path: Path, caplog) -> None:
    w = watcher_for(remote, tmp_path, max_commits=3)
    cursor = w.observe(None, []).head
    subjects = [f"c{i}" for i in range(5)]
    for s in subjects:
        remote.commit(s)
    with caplog.at_level(logging.WARNING, logger="loopphase.git"):
        obs = w.observe(cursor, [])
    assert [c.subject for c in obs.commits] == ["c2", "c3", "c4"]
    assert w.last_truncated == 5
    assert "listing only the newest 3" in caplog.text


def test_no_fetch_or_read_when_head_unchanged(remote: Remote, tmp_path: Path) -> None:
    remote.commit("status", {STATUS: "working\n"})
    w = watcher_for(remote, tmp_path)
    calls = count_git_calls(w)
    first = w.observe(None, [STATUS])
    assert calls["fetch"] == 1 and calls["cat-file"] >= 1
    fetch_head = w.cache.path / "FETCH_HEAD"
    mtime = fetch_head.stat().st_mtime_ns
    before = dict(calls)

    again = w.observe(first.head, [STATUS])
    assert again.files == {STATUS: "working\n"} and again.commits == ()
    assert calls["ls-remote"] == before["ls-remote"] + 1  # the cheap check still runs
    assert calls["fetch"] == before["fetch"]  # ...but nothing else does
    assert calls["cat-file"] == before["cat-file"]
    assert fetch_head.stat().st_mtime_ns == mtime

    remote.commit("more")  # control: a moved head does fetch
    moved = w.observe(first.head, [STATUS])
    assert calls["fetch"] == before["fetch"] + 1
    assert [c.subject for c in moved.commits] == ["more"]


def test_files_read_at_pushed_ref_only(remote: Remote, tmp_path: Path) -> None:
    remote.commit("status", {STATUS: "# Status\nworking\n"})
    w = watcher_for(remote, tmp_path)
    cursor = w.observe(None, [STATUS]).head
    remote.commit("done (not pushed)", {STATUS: "# Status\n## DONE\n"}, push=False)
    obs = w.observe(cursor, [STATUS])
    assert obs.head == cursor and obs.commits == ()
    assert "## DONE" not in (obs.files[STATUS] or "")
    remote.push()
    obs = w.observe(cursor, [STATUS])
    assert obs.files[STATUS] == "# Status\n## DONE\n"
    assert [c.subject for c in obs.commits] == ["done (not pushed)"]


def test_status_file_state_dir_then_root(remote: Remote, tmp_path: Path) -> None:

    paths = status_file_candidates("machine-docs", "STATUS-1.md")
    assert paths == ["machine-docs/STATUS-1.md", "STATUS-1.md"]
    w = watcher_for(remote, tmp_path)
    remote.commit("root status", {"STATUS-1.md": "root\n"})
    obs = w.observe(None, paths)
    assert obs.files == {"machine-docs/STATUS-1.md": None, "STATUS-1.md": "root\n"}
    assert resolve_status_file(obs.files, "machine-docs", "STATUS-1.md") == (
        "STATUS-1.md",
        "root\n",
    )
    remote.commit("state dir status", {"machine-docs/STATUS-1.md": "state\n"})
    obs = w.observe(obs.head, paths)
    assert resolve_status_file(obs.files, "machine-docs", "STATUS-1.md") == (
        "machine-docs/STATUS-1.md",
        "state\n",
    )


def test_inbox_appears_then_deleted(remote: Remote, tmp_path: Path) -> None:
    w = watcher_for(remote, tmp_path)
    cursor = w.observe(None, [INBOX]).head
    assert w.observe(cursor, [INBOX]).files == {INBOX: None}
    remote.commit("inbox", {INBOX: "please check X\n"})
    obs = w.observe(cursor, [INBOX])
    assert obs.files == {INBOX: "please check X\n"}
    remote.delete(INBOX)
    remote.commit("ack inbox")
    obs = w.observe(obs.head, [INBOX])
    assert obs.files == {INBOX: None}
    assert [c.subject for c in obs.commits] == ["ack inbox"]


def test_directory_and_bad_paths_read_as_absent(remote: Remote, tmp_path: Path) -> None:
    remote.commit("dir", {"machine-docs/a.md": "a\n"})
    obs = watcher_for(remote, tmp_path).observe(None, ["machine-docs", "../etc/passwd", "a b.md"])
    assert obs.files == {"machine-docs": None, "../etc/passwd": None, "a b.md": None}


def test_force_push_detected_not_rebaselined(remote: Remote, tmp_path: Path, caplog) -> None:
    base = remote.sha()
    w = watcher_for(remote, tmp_path)
    w.observe(None, [])
    remote.commit("claim: one")
    cursor = remote.commit("claim: two")
    assert w.observe(base, []).head == cursor

    git(remote.work, "reset", "-q", "--hard", base)
    rewritten = remote.commit("rewritten history", push=False)
    remote.push(force=True)
    with caplog.at_level(logging.WARNING, logger="loopphase.git"):
        obs = w.observe(cursor, [])
    assert obs.reachable and obs.force_pushed
    assert obs.head == rewritten
    assert obs.commits == ()
    assert "FORCE-PUSH" in caplog.text
    # once the caller re-baselines on the new head, it is a normal observation again
    nxt = w.observe(obs.head, [])
    assert not nxt.force_pushed and nxt.commits == ()


def test_unknown_cursor_after_restart_fetches_then_decides(remote: Remote, tmp_path: Path) -> None:
    cursor = remote.sha()
    remote.commit("claim: while supervisor was down")
    fresh = RemoteWatcher(remote.url, "main", tmp_path / "new-cache")
    calls = count_git_calls(fresh)
    obs = fresh.observe(cursor, [])
    assert calls["fetch"] == 1
    assert not obs.force_pushed
    assert [c.subject for c in obs.commits] == ["claim: while supervisor was down"]
    never_seen = "0123456789abcdef0123456789abcdef01234567"
    assert fresh.observe(never_seen, []).force_pushed


def test_unreachable_remote_reports_and_backs_off(tmp_path: Path, clock: FakeClock) -> None:
    missing = tmp_path / "no-such-repo.git"
    w = RemoteWatcher(str(missing), "main", tmp_path / "cache", clock=clock)
    calls = count_git_calls(w)
    obs = w.observe(None, ["README.md"])
    assert not obs.reachable and obs.head is None
    assert obs.error and "ls-remote failed" in obs.error
    assert calls["ls-remote"] == 1

    blocked = w.observe(None, ["README.md"])
    assert not blocked.reachable
    assert blocked.error == f"backing off after 1 failures: {obs.error}"
    with pytest.raises(GitRemoteError, match="backing off"):
        w.head()
    assert sum(calls.values()) == 1  # no network while backing off

    clock.advance(1.0)  # 1 s after the first failure: retry, fail, now wait 2 s
    assert not w.observe(None, []).reachable
    assert calls["ls-remote"] == 2
    clock.advance(1.5)
    assert w.observe(None, []).error.startswith("backing off after 2 failures")
    assert calls["ls-remote"] == 2
    clock.advance(0.5)
    w.observe(None, [])
    assert calls["ls-remote"] == 3 and w.backoff.failures == 3 and w.backoff.delay == 4.0

    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(missing))
    clock.advance(4.0)
    obs = w.observe(None, [])
    assert not obs.reachable and "not found" in (obs.error or "")  # reachable, but no branch
    assert w.backoff.failures == 0  # the remote answered: backoff cleared


def test_backoff_caps_at_max(tmp_path: Path, clock: FakeClock) -> None:
    w = RemoteWatcher(str(tmp_path / "nope"), "main", tmp_path / "c", clock=clock, backoff_max=5)
    for _ in range(6):
        w.observe(None, [])
        clock.advance(w.backoff.delay)
    assert w.backoff.failures == 6 and w.backoff.delay == 5


def test_recovers_after_remote_comes_back(remote: Remote, tmp_path: Path, clock: FakeClock) -> None:
    moved = remote.bare.with_name("moved.git")
    remote.bare.rename(moved)
    w = RemoteWatcher(remote.url, "main", tmp_path / "cache", clock=clock)
    assert not w.observe(None, []).reachable
    moved.rename(remote.bare)
    assert not w.observe(None, []).reachable  # still backing off: not even tried
    clock.advance(1.0)
    obs = w.observe(None, ["README.md"])
    assert obs.reachable and obs.files == {"README.md": "hello\n"}
    assert w.backoff.failures == 0

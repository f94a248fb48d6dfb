"""Review of issue 13 (faults 4 and 9 meet): the outbound scrubber itself was quadratic.

``URL_USERINFO_RE`` began with an unanchored ``[A-Za-z][A-Za-z0-9+.-]*://``: on a long word it
retried the whole run from every letter (40 KB of "a" took 3 s; time grows with the square).
Commit subjects, which any pusher writes, are scrubbed inside the tick: a 120 KB subject held
the operator's event loop for about half a minute, a megabyte for most of an hour. The scrub
runs in a child process given far longer than the fixed code needs (a hang detector, not a
speed target: those live in bench/; a thread would not do, ``re`` holds the GIL throughout).
Subjects are now also cut to ``SUBJECT_MAX`` before they are scrubbed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from loopphase.controller.tick import _scrubbed_git
from loopphase.core.userpattern import SUBJECT_MAX
from loopphase.git.watcher import RemoteWatcher

from tests.git.gitwatch_helpers import Remote


def test_scrub_of_long_words_is_linear() -> None:
    script = ("from loopphase.outbound import scrub\n"
              "for text in ('a' * 400_000, 'x-' * 200_000, '?' + 'token' * 80_000):\n"
              "    assert scrub(text) == text, text[:20]\n")
    try:
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              timeout=30)
    except subprocess.TimeoutExpired:
        raise AssertionError("scrubbing 400 KB of one word did not finish in 30 s") from None
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_huge_real_commit_subject_is_cut_before_it_is_scrubbed(remote: Remote, tmp_path: Path) -> None:
    watcher = RemoteWatcher(remote.url, "main", tmp_path / "cache")
    cursor = watcher.observe(None, []).head
    remote.commit("claim(p1): " + "a" * 60_000)
    raw = watcher.observe(cursor, [])
    assert len(raw.commits[-1].subject) > 60_000  # git hands the whole subject over
    subject = _scrubbed_git(raw).commits[-1].subject
    assert subject.startswith("claim(p1): aaa") and len(subject) <= SUBJECT_MAX

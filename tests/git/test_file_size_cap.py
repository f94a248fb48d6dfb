"""Pushed files are never read whole (hardening fault 6): a 20 MB status file costs a size
check, not 20 MB of memory, and shows as a Degraded condition naming the file and the knob."""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

from loopphase.api.spec import LoopPhaseSpec
from loopphase.api.status import LoopPhaseStatus
from loopphase.core.observations import AgentObservation, GitObservation, Observations
from loopphase.core.reconcile import reconcile
from loopphase.git.watcher import RemoteWatcher

from tests.git.gitwatch_helpers import Remote

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
BIG = 20 * 1024 * 1024


def test_oversized_file_is_sized_not_read(remote: Remote, tmp_path: Path) -> None:
    remote.commit("status", {"machine-docs/S1.md": "## DONE\n" + "x" * BIG, "small.md": "hi\n"})
    watcher = RemoteWatcher(remote.url, "main", tmp_path / "cache")
    tracemalloc.start()
    try:
        obs = watcher.observe(None, ["machine-docs/S1.md", "small.md", "absent.md"])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert obs.files == {"machine-docs/S1.md": None, "small.md": "hi\n", "absent.md": None}
    assert obs.oversized == {"machine-docs/S1.md": BIG + len("## DONE\n")}
    assert peak < 4 * 1024 * 1024, f"reading the head allocated {peak} bytes"
    again = watcher.observe(obs.head, ["machine-docs/S1.md", "small.md"])  # from the cache
    assert again.oversized == obs.oversized and again.files["small.md"] == "hi\n"


def _tick(spec: LoopPhaseSpec, status: LoopPhaseStatus, git: GitObservation):
    agents = {r: AgentObservation(role=r, present=False) for r in ("builder", "adversary")}
    return reconcile(spec, status, Observations(agents=agents, git=git), NOW)


def test_oversized_status_file_is_a_condition_not_a_done() -> None:
    spec = LoopPhaseSpec.model_validate({
        "repo": {"url": "https://example.invalid/r.git", "maxFileBytes": 4096},
        "phases": [{"id": "p1", "plan": "p1.md", "statusFile": "S1.md"},
                   {"id": "p2", "plan": "p2.md", "statusFile": "S2.md"}],
    })
    status = LoopPhaseStatus.model_validate({"current": {"index": 0, "id": "p1"}})
    # Over the spec's cap but under the reader's hard cap: read, then refused by the core.
    big = GitObservation(reachable=True, head="a" * 40,
                         files={"machine-docs/S1.md": "## DONE\n" + "é" * 3000})
    actions, st = _tick(spec, status, big)
    degraded = st.condition("Degraded")
    assert degraded is not None and degraded.status == "True" and degraded.reason == "FileTooLarge"
    assert "machine-docs/S1.md is 6008 bytes, over spec.repo.maxFileBytes (4096)" in degraded.message
    assert st.current is not None and st.current.index == 0  # the DONE in it was not believed
    warnings = [h for h in st.history if h.rule == "git.file-too-large"]
    assert len(warnings) == 1
    _, st2 = _tick(spec, st, big)  # still there: no second warning
    assert len([h for h in st2.history if h.rule == "git.file-too-large"]) == 1
    # Never read at all by the git reader: same condition from the observation's sizes.
    unread = GitObservation(reachable=True, head="b" * 40, files={"machine-docs/S1.md": None},
                            oversized={"machine-docs/S1.md": 60_000_000})
    _, st3 = _tick(spec, status, unread)
    assert "60000000 bytes" in st3.condition("Degraded").message  # type: ignore[union-attr]
    fixed = GitObservation(reachable=True, head="c" * 40, files={"machine-docs/S1.md": "## DONE\n"})
    _, st4 = _tick(spec, st2, fixed)
    assert st4.handoff.oversized_files == {}
    assert st4.current is not None and st4.current.index == 1  # shrunk: DONE counts, advance

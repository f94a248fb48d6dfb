"""Fault: a corrupted status.json ended in a traceback; a missing or `{}` one silently started
over (phase re-derived, counters and limit windows dropped). Now status is checksummed and
journalled; damage is refused with the recovery command, and `loopphase repair` rebuilds it
exactly from the journal."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from loopphase.api.status import LoopPhaseStatus
from loopphase.runner.loop import Runner, TickReport
from loopphase.runner.specfile import load_spec
from loopphase.runner.store import StateDamaged, StateStore

from tests.core.reconcile_helpers import World, agent, banner
from tests.runner.test_local_e2e import (
    LIMITED_BUILDER,
    QUIET_ADVERSARY,
    _run_until,
    _write_spec,
    processes_under,
)


def cli(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "loopphase.cli", *argv], capture_output=True, text=True,
                          timeout=timeout)


def saved_store(tmp_path: Path) -> tuple[StateStore, LoopPhaseStatus]:
    """A store with a few saves of a real reconcile history (a limit window open)."""
    store = StateStore(tmp_path / "state")
    world = World()
    world.started()
    store.save(world.status)
    world.tick({"builder": agent("builder", banner("12:30pm")), "adversary": agent("adversary", "> ")}, advance=5)
    store.save(world.status)
    world.tick({"builder": agent("builder", banner("12:30pm")), "adversary": agent("adversary", "> ")}, advance=5)
    store.save(world.status)
    return store, world.status


@pytest.mark.parametrize("damage", [
    b'{"format": 1, "sha256": "00", "status": {"phase": "Running"}}',  # checksum
    b"{}",                                                              # empty object
    b'{"format": 1, "sha256": ',                                        # cut
    b"\xff\xfe garbage",                                               # not text
])
def test_damaged_status_is_refused_with_the_recovery_command(tmp_path: Path, damage: bytes) -> None:
    store, _ = saved_store(tmp_path)
    store.status_path.write_bytes(damage)
    with pytest.raises(StateDamaged, match="loopphase repair"):
        StateStore(store.dir).load()


def test_missing_status_with_a_journal_is_refused_not_started_over(tmp_path: Path) -> None:
    store, _ = saved_store(tmp_path)
    store.status_path.unlink()
    with pytest.raises(StateDamaged, match="missing but the journal holds 3 saves"):
        StateStore(store.dir).load()
    assert StateStore(tmp_path / "fresh").load() == LoopPhaseStatus()


def test_repair_rebuilds_exactly_what_was_saved(tmp_path: Path) -> None:
    store, last = saved_store(tmp_path)
    store.status_path.write_text("{}")
    rebuilt = StateStore(store.dir).repair()
    assert rebuilt.to_wire() == last.to_wire()
    assert StateStore(store.dir).load().to_wire() == last.to_wire()
    assert list(store.dir.glob("status.damaged-*.json"))  # the damaged file is kept aside


def test_a_real_run_damaged_then_repaired_resumes_exactly(tmp_path: Path) -> None:
    """Run until a limit window is open, damage status.json: `loopphase run` refuses (no
    traceback) naming `loopphase repair`; repair restores windows, counters and the phase."""
    spec_path = _write_spec(tmp_path, LIMITED_BUILDER, QUIET_ADVERSARY)
    loaded = load_spec(spec_path)
    runner = Runner(loaded)

    def limited(report: TickReport) -> bool:
        builder = report.result.status.agents.get("builder")
        return builder is not None and builder.limit is not None

    try:
        asyncio.run(_run_until(runner, limited, timeout=60))
        before = json.loads(runner.store.status_path.read_text())["status"]
        assert before["agents"]["builder"]["limit"]["until"]
        runner.store.status_path.write_text(runner.store.status_path.read_text()[:200])

        refused = cli("run", str(spec_path), "--max-ticks", "1")
        assert refused.returncode == 1 and "Traceback" not in refused.stderr
        assert "is damaged" in refused.stderr and f"loopphase repair {spec_path}" in refused.stderr
        shown = cli("status", str(spec_path))
        assert shown.returncode == 1 and "Traceback" not in shown.stderr and "loopphase repair" in shown.stderr

        repaired = cli("repair", str(spec_path))
        assert repaired.returncode == 0, repaired.stderr
        assert "1 open limit windows" in repaired.stdout
        after = json.loads(runner.store.status_path.read_text())["status"]
        assert after == before  # phase, windows, counters, cursors, history: exactly
    finally:
        asyncio.run(runner.stop_everything())
    assert processes_under(tmp_path) == []


def test_the_journal_compacts_and_still_rebuilds_exactly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import loopphase.runner.store as store_module

    monkeypatch.setattr(store_module, "COMPACT_AFTER", 3)
    store = StateStore(tmp_path / "state")
    world = World()
    world.started()
    for step in range(10):
        pane = banner("12:30pm") if step % 2 else "> "
        world.tick({"builder": agent("builder", pane), "adversary": agent("adversary", "> ")}, advance=5)
        store.save(world.status)
    assert len(store.journal_path.read_text().splitlines()) <= 4
    assert StateStore(store.dir).rebuild().to_wire() == world.status.to_wire()


def test_a_status_from_before_checksums_is_refused_then_adopted_by_repair(tmp_path: Path) -> None:
    world = World()
    world.started()
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "status.json").write_text(json.dumps(world.status.to_wire()))  # the old plain format
    with pytest.raises(StateDamaged, match="older loopphase without a checksum"):
        StateStore(state).load()
    assert StateStore(state).repair().to_wire() == world.status.to_wire()
    assert StateStore(state).load().to_wire() == world.status.to_wire()
    assert StateStore(state).rebuild().to_wire() == world.status.to_wire()  # now journalled
    (state / "status.json").write_text("{}")
    with pytest.raises(StateDamaged):
        StateStore(state).load()

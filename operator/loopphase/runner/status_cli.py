"""`loopphase status FILE.yaml | --state-dir DIR [--watch]`: where a local run stands, and why."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml

from loopphase.api.base import clip
from loopphase.api.status import LoopPhaseStatus
from loopphase.cli import plain
from loopphase.runner.loop import default_state_dir
from loopphase.runner.specfile import LoadedSpec, SpecFileError, load_spec
from loopphase.runner.store import StateDamaged, StateStore
from loopphase.runtime.local import ShimRecord, marked_processes, run_id, same_process


def _age(ts: datetime | None, now: datetime) -> str:
    if ts is None:
        return "-"
    secs = int((now - ts).total_seconds())
    if secs < 120:
        return f"{secs}s"
    if secs < 7200:
        return f"{secs // 60}m"
    return f"{secs // 3600}h"


def render(name: str, status: LoopPhaseStatus, now: datetime, history: int = 8,
           gone: dict[str, str] | None = None) -> str:
    """The status as text; ages count to ``now``. ``gone``: role -> why its agent is known
    not to run (shown under the role)."""
    started = status.history[0].time if status.history else None
    header = ["NAME", "PHASE", "PROGRESS", "BUILDER", "ADVERSARY", "READY", "ATTENTION", "AGE",
              "CURRENT", "MESSAGE"]
    row = [name, status.phase, status.progress or "-", status.builder or "-", status.adversary or "-",
           status.ready or "-", status.needs_attention or "-", _age(started, now),
           status.current.id if status.current else "-", status.message or ""]
    widths = [max(len(h), len(v)) for h, v in zip(header, row, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip(),
             "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip(), ""]
    for role, agent in status.agents.items():
        lines.append(f"{role}: {agent.state} for {_age(agent.since, now)}"
                     f"{' - ' + agent.reason if agent.reason else ''}")
        if gone and role in gone:
            lines.append(f"  AGENT GONE: {gone[role]}")
        if agent.attention is not None:
            # The whole cause, never cut: it says what the human has to do.
            lines.append(f"  NEEDS ATTENTION ({agent.attention.reason}) for "
                         f"{_age(agent.attention.since, now)}: {agent.attention.message}")
        if agent.limit is not None:
            window = agent.limit
            how = window.decided_by or ("from banner" if window.parsed else "flat probe")
            lines.append(f"  {window.limit_class} limit window until {window.until.isoformat()} "
                         f"({how}), probes {window.nudges}: {clip(window.excerpt, 80)}")
        if agent.waiting_until is not None:
            lines.append(f"  declared wait until {agent.waiting_until.isoformat()}")
        heal = agent.heal
        lines.append(f"  heal tier {heal.tier}{' CIRCUIT OPEN' if heal.circuit_open else ''}, "
                     f"restarts {agent.restarts}, last spawn {agent.spawn_mode or '-'}")
        last = next((h for h in reversed(status.history) if h.role == role), None)
        if last is not None:
            lines.append(f"  last action {last.kind} {_age(last.time, now)} ago: {last.rule}")
    for hold in status.holds:
        who = f"{hold.loop_phase}:{hold.started_by}" if hold.loop_phase else hold.started_by
        lines.append(f"account hold {hold.account}: {hold.limit_class} limit of {who} since "
                     f"{_age(hold.since, now)} ago, until {hold.until.isoformat()}: "
                     f"{clip(hold.excerpt, 80)} (pings queued, stall clocks paused)")
    pending = status.handoff.pending_pings
    if pending:
        lines.append("pending pings: " + ", ".join(f"{p.kind}->{p.role}" for p in pending))
    feed = status.git
    if feed.last_observation_source is not None or feed.last_webhook_at is not None:
        lines.append(f"git: last new head by {feed.last_observation_source or '-'} "
                     f"{_age(feed.last_observation_at, now)} ago (webhook {feed.heads_by_webhook}, "
                     f"poll {feed.heads_by_poll}); last webhook {_age(feed.last_webhook_at, now)} ago")
    conditions = [c for c in status.conditions if c.status == "True"]
    if conditions:
        lines.append("conditions: " + ", ".join(f"{c.type}({c.reason})" for c in conditions))
    for condition in conditions:
        if condition.reason == "InvalidSpec":
            lines.append(f"INVALID SPEC: {condition.message}")
    if status.history:
        lines += ["", "recent:"]
        for entry in status.history[-history:]:
            lines.append(f"  #{entry.seq:<4} {entry.time.strftime('%H:%M:%S')} {entry.kind:<13} "
                         f"{entry.role or '':<10} {entry.rule}: {clip(entry.reason, 90)}")
    return "\n".join(lines)


def agent_gone(state_dir: Path, role: str) -> str | None:
    """Why no agent of ``role`` runs for the run in ``state_dir`` (its shim record names no
    live process and no process carries the role's marker), or None when one does."""
    record = None
    with contextlib.suppress(OSError, ValueError, TypeError):
        record = ShimRecord(**json.loads((state_dir / "shims" / f"{role}.json").read_text(encoding="utf-8")))
    if record is not None and same_process(record):
        return None
    if marked_processes(run_id(state_dir), role):
        return None
    if record is None:
        return "no shim record and no process marked as this run's"
    return f"its shim (pid {record.pid}) is not running and no process is marked as this run's"


def saved_at(store: StateStore) -> datetime | None:
    """When the status was last saved (status.json's modification time)."""
    try:
        return datetime.fromtimestamp(store.status_path.stat().st_mtime, UTC)
    except OSError:
        return None


def liveness(store: StateStore, status: LoopPhaseStatus) -> tuple[str, datetime | None, dict[str, str]]:
    """The line saying whether a runner drives this state, the time ages count to (None: now),
    and the roles whose agents are gone."""
    pid = store.holder()
    if pid is not None:
        return f"runner live (pid {pid or '?'})", None, {}
    when = saved_at(store)
    at = when.isoformat(timespec="seconds") if when else "its last save"
    gone = {role: why for role in status.agents if (why := agent_gone(store.dir, role)) is not None}
    return (f"NO RUNNER IS LIVE since {at}: the states below are as last seen (ages count to that "
            "save), agents may be gone; `loopphase run` resumes it"), when, gone


def run_name(state_dir: Path) -> str:
    """The metadata.name of the run kept in ``state_dir`` (recorded in spec.applied.json by
    `loopphase run`), else the directory's name (``.loopphase/<name>``)."""
    try:
        name = json.loads((state_dir / "spec.applied.json").read_text(encoding="utf-8"))["name"]
    except (OSError, ValueError, KeyError, TypeError):
        return state_dir.resolve().name
    return name if isinstance(name, str) and name else state_dir.resolve().name


def _not_this_run(store: StateStore, loaded: LoadedSpec) -> str | None:
    """Why the state in ``store`` is not the run of ``loaded`` (another metadata.name, repo or
    branch: the check `loopphase run` refuses such a state dir with), or None."""
    recorded = run_name(store.dir)
    if (store.dir / "spec.applied.json").exists() and recorded != loaded.name:
        return (f"{store.dir} holds the state of the LoopPhase {recorded!r}, not {loaded.name!r} "
                f"({loaded.path}): give the state dir of this spec (or no --state-dir)")
    return store.binding_problem(loaded.spec.repo.url, loaded.spec.repo.branch)


def _guess_name(path: Path) -> str:
    """The run name an invalid spec file most likely has: its ``metadata.name`` if that much
    parses, else the file's stem (a bare spec's name)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        data = None
    metadata = data.get("metadata") if isinstance(data, dict) else None
    name = metadata.get("name") if isinstance(metadata, dict) else None
    return name if isinstance(name, str) and name and "/" not in name and name not in {".", ".."} \
        else path.stem


def _last_good_state(path: Path, state_dir: Path | None) -> int:
    """After the spec error: the state of the run of ``path`` as last saved (a live runner
    keeps running its last good spec), then 2; only 2 when there is none."""
    name = _guess_name(path)
    state_dir = state_dir or path.resolve().parent / ".loopphase" / name
    store = StateStore(state_dir, create=False, spec_hint=str(path))
    if not store.status_path.exists() or run_name(state_dir) != name:
        return 2
    try:
        status = store.load()
    except StateDamaged as err:
        print(f"loopphase status: {err}", file=sys.stderr)
        return 2
    line, at, gone = liveness(store, status)
    print(f"the last saved state of {state_dir} (the run keeps its last good spec until the file "
          f"is valid again):\n{line}\n{render(name, status, at or datetime.now(UTC), gone=gone)}")
    return 2


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="loopphase status", description=plain(__doc__))
    parser.add_argument("file", nargs="?", type=Path, metavar="FILE", help="the LoopPhase YAML given to `loopphase run`")
    parser.add_argument("--state-dir", type=Path, help="where the run keeps its state (default: .loopphase/<name> beside FILE)")
    parser.add_argument("--watch", action="store_true", help="refresh every 2 seconds until Ctrl-C")
    args = parser.parse_args(argv)
    if args.state_dir is None and args.file is None:
        parser.error("give the spec FILE or --state-dir")
    state_dir = args.state_dir
    if args.file is not None:
        try:
            loaded = load_spec(args.file)
        except SpecFileError as err:
            print(f"loopphase status: {err}", file=sys.stderr)
            return _last_good_state(args.file, state_dir)
        name, state_dir = loaded.name, state_dir or default_state_dir(loaded)
    else:
        name = run_name(state_dir)
    store = StateStore(state_dir, create=False, spec_hint=str(args.file or "SPEC.yaml"))
    if not store.status_path.exists() and not store.journal_path.exists():
        print(f"loopphase status: no run state in {state_dir} (start one with `loopphase run`)", file=sys.stderr)
        return 1
    if args.file is not None:
        problem = _not_this_run(store, loaded)
        if problem is not None:
            print(f"loopphase status: {problem}", file=sys.stderr)
            return 1
    while True:
        try:
            status = store.load()
        except StateDamaged as err:
            print(f"loopphase status: {err}", file=sys.stderr)
            return 1
        line, at, gone = liveness(store, status)
        text = line + "\n" + render(name, status, at or datetime.now(UTC), gone=gone)
        if not args.watch:
            print(text)
            return 0
        print("\033[2J\033[H" + text, flush=True)
        try:
            time.sleep(2)  # a display refresh interval, not synchronisation
        except KeyboardInterrupt:
            return 0

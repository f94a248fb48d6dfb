"""`loopphase repair FILE.yaml`: rebuild a damaged status.json of a local run from its journal.

Every save of the status is journalled (status.journal.jsonl, with a checksum per line)
before status.json is replaced, so the rebuilt status is exactly the last one saved: phase,
counters, limit windows, cursors. The damaged file is kept beside it. Refuses while a
`loopphase run` holds the state directory.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from loopphase.runner.loop import default_state_dir
from loopphase.runner.secure import UnsafeStateDir, check_owned_private
from loopphase.runner.specfile import SpecFileError, load_spec
from loopphase.runner.store import RunLocked, StateDamaged, StateStore


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="loopphase repair", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", type=Path, metavar="FILE", help="the LoopPhase YAML given to `loopphase run`")
    parser.add_argument("--state-dir", type=Path, help="where the run keeps its state (default: .loopphase/<name> beside FILE)")
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        loaded = load_spec(args.file)
    except SpecFileError as err:
        print(f"loopphase repair: {err}", file=sys.stderr)
        return 2
    state_dir = args.state_dir or default_state_dir(loaded)
    if not state_dir.is_dir():
        print(f"loopphase repair: no run state in {state_dir}", file=sys.stderr)
        return 1
    try:
        check_owned_private(state_dir)
        store = StateStore(state_dir, create=False, spec_hint=str(args.file))
        store.lock()
    except (UnsafeStateDir, RunLocked) as err:
        print(f"loopphase repair: {err}", file=sys.stderr)
        return 1
    try:
        status = store.repair()
    except StateDamaged as err:
        print(f"loopphase repair: {err}", file=sys.stderr)
        return 1
    finally:
        store.unlock()
    phase = status.current.id if status.current else "-"
    windows = sum(1 for a in status.agents.values() if a.limit is not None)
    print(f"rebuilt {store.status_path} from the journal: phase {phase} ({status.phase}), "
          f"{len(status.agents)} agents, {windows} open limit windows, history #{status.history_seq}")
    return 0

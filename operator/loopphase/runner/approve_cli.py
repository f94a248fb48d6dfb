"""`loopphase approve FILE|--state-dir DIR [--phase ID]` and `loopphase reject ... --message M`.

For a local run: appends the verdict to ``<state dir>/approvals.jsonl``; the running
`loopphase run` acts on it at its next tick (approve: the phase's verified DONE advances;
reject: the builder is told M and the phase stays). On a cluster, annotate the LoopPhase:
``kubectl annotate lp NAME loopphase.dev/approve=PHASE`` (reject:
``kubectl annotate --overwrite lp NAME loopphase.dev/reject="what to fix"``).
"""

from __future__ import annotations

import argparse
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

from loopphase.api.spec import LoopPhaseSpec
from loopphase.api.status import LoopPhaseStatus
from loopphase.cli import plain
from loopphase.core.typeable import untypeable_reason
from loopphase.runner.loop import default_state_dir
from loopphase.runner.specfile import SpecFileError, load_spec
from loopphase.runner.store import StateStore


def _main(argv: list[str], verdict: str) -> int:
    parser = argparse.ArgumentParser(prog=f"loopphase {verdict}", description=plain(__doc__),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", nargs="?", type=Path, help="the LoopPhase YAML given to `loopphase run`")
    parser.add_argument("--state-dir", type=Path, help="the run's state directory (instead of FILE)")
    parser.add_argument("--phase", help="the phase id (default: the current phase)")
    if verdict == "reject":
        parser.add_argument("--message", "-m", required=True, help="what the builder must fix (one line)")
    args = parser.parse_args(argv)
    if args.state_dir is None and args.file is None:
        parser.error("give the spec FILE or --state-dir")
    message = getattr(args, "message", "") or ""
    if verdict == "reject" and untypeable_reason(message) is not None:
        parser.error(f"--message: {untypeable_reason(message)}")
    state_dir = args.state_dir
    spec = None
    if state_dir is None:
        try:
            loaded = load_spec(args.file)
        except SpecFileError as err:
            print(f"loopphase {verdict}: {err}", file=sys.stderr)
            return 2
        state_dir = default_state_dir(loaded)
        spec = loaded.spec
        if args.phase is not None and spec.phase_index(args.phase) is None:
            parser.error(f"--phase {args.phase!r} is not a phase id of {args.file}")
    store = StateStore(state_dir, create=False)
    if not store.status_path.exists():
        print(f"loopphase {verdict}: no run state in {state_dir} (start one with `loopphase run`)",
              file=sys.stderr)
        return 1
    status = store.load()
    current = status.current.id if status.current else None
    phase = args.phase or current
    refused = _nothing_to_decide(spec, status, phase, verdict)
    if refused is not None:
        print(f"loopphase {verdict}: {refused}", file=sys.stderr)
        return 1
    store.append_approval({"id": uuid.uuid4().hex, "verdict": verdict, "phase": phase,
                           "message": message, "time": datetime.now(UTC).isoformat()})
    waiting = status.current is not None and status.current.awaiting_approval_since is not None
    if phase != current and verdict == "approve":
        note = f" ahead of time: its DONE will advance without waiting (current phase: {current})"
    else:
        note = "" if waiting else f" (phase {current} is not awaiting approval yet)"
    print(f"{verdict} recorded for phase {phase}{note}; `loopphase run` acts on it at its next tick")
    return 0


def _nothing_to_decide(
    spec: LoopPhaseSpec | None, status: LoopPhaseStatus, phase: str | None, verdict: str
) -> str | None:
    """Why a verdict for ``phase`` can never be acted on (None: record it). A verdict ahead of
    time, for a gated phase not yet awaiting approval, is allowed."""
    if status.completed_at is not None:
        return "the loop is Complete: no phase waits for approval"
    if phase is None:
        return "the run has no current phase yet: give --phase"
    if spec is None:
        return None
    index = spec.phase_index(phase)
    if index is None:
        return None
    if status.current is not None and index < status.current.index:
        return f"phase {phase} is already done (the current phase is {status.current.id})"
    if status.current is not None and index > status.current.index and verdict == "reject":
        return (f"phase {phase} is not current (the current phase is {status.current.id}): a "
                "reject applies only to the phase awaiting approval")
    if spec.phases[index].approval != "manual":
        return (f"phase {phase} has no approval gate (spec.phases[{index}].approval is "
                f"{spec.phases[index].approval!r}): its DONE advances by itself; set "
                "approval: manual to gate it")
    return None


def main(argv: list[str]) -> int:
    return _main(argv, "approve")


def reject_main(argv: list[str]) -> int:
    return _main(argv, "reject")

"""Phase progression rules (pure): DONE detection and its preconditions."""

from __future__ import annotations

from dataclasses import dataclass

from loopphase.api.spec import LoopPhaseSpec
from loopphase.api.status import HandoffStatus


def has_done_marker(content: str, marker: str) -> bool:
    """A line exactly equal to the marker (trailing spaces ignored): not "## DONE criteria"."""
    return any(line.rstrip() == marker for line in content.splitlines())


@dataclass(frozen=True)
class DoneVerdict:
    done: bool
    blocked: str | None = None  # why a DONE marker was not accepted


def judge_done(spec: LoopPhaseSpec, content: str | None, handoff: HandoffStatus) -> DoneVerdict:
    if content is None or not has_done_marker(content, spec.done.marker):
        return DoneVerdict(False)
    if spec.done.require_review:
        if handoff.review_pending or handoff.reviews_seen == 0:
            return DoneVerdict(False, "DONE written but no review commit followed the last claim")
        if not handoff.last_review_passed:
            return DoneVerdict(False, "DONE written but the last review did not PASS")
    return DoneVerdict(True)


def progress(spec: LoopPhaseSpec, finished: set[str]) -> str:
    """Phases finished / total: ``finished`` holds the ids of the phases whose DONE was verified
    (or skipped by startAt); counted by id against the spec as it is now."""
    total = len(spec.phases)
    return f"{sum(1 for p in spec.phases if p.id in finished)}/{total}"

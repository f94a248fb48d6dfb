"""`kubectl annotate lp NAME loopphase.dev/approve=PHASE` / `loopphase.dev/reject=...` as requests."""

from __future__ import annotations

from loopphase.operator.approvals import APPROVE, REJECT, from_annotations


def test_annotations_become_requests_with_stable_ids() -> None:
    meta = {"annotations": {APPROVE: "p2 ", REJECT: "add tests", "other": "x"}}
    approve, reject = from_annotations(meta, "p2")
    assert (approve.id, approve.verdict, approve.phase) == ("annotation/approve/p2", "approve", "p2")
    assert reject.verdict == "reject" and reject.phase == "p2" and reject.message == "add tests"
    again = from_annotations(meta, "p2")
    assert [r.id for r in again] == [approve.id, reject.id]  # acted on once, not every tick
    # The same words in a later phase are a new request; new words are a new request.
    assert from_annotations(meta, "p3")[1].id != reject.id
    assert from_annotations({"annotations": {REJECT: "other words"}}, "p2")[0].id != reject.id
    assert from_annotations({}, "p1") == [] and from_annotations({"annotations": {APPROVE: ""}}, "p1") == []

"""The manual approval gate (``phases[].approval: manual``), pure.

- ``gate``: called where a verified DONE would advance; holds the phase in AwaitingApproval
  instead (once per DONE head; a rejected head waits for a new push).
- ``apply_requests``: folds approve/reject requests (observed by the shell) into the current
  phase, each request once (``approvalsHandled``).
- ``rejection_text``: what the builder is told after a reject.
- ``finalize``: the AwaitingApproval condition and display phase (from ``conditions.finalize``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from loopphase.api.spec import LoopPhaseSpec, PhaseSpec
from loopphase.api.status import LoopPhaseStatus
from loopphase.core.decision import Decision
from loopphase.core.heal import healed
from loopphase.core.observations import ApprovalRequest
from loopphase.core.typeable import untypeable_reason

HANDLED_LIMIT = 50
MESSAGE_MAX = 500
ANNOTATION = "loopphase.dev/approve"


def gate(phase: PhaseSpec, head: str | None, where: str, d: Decision) -> bool:
    """True while the verified DONE of ``phase`` (at ``head``) may not advance yet."""
    cur = d.status.current
    assert cur is not None
    if phase.approval != "manual" or cur.approved:
        return False
    if head is not None and cur.rejected_sha == head:
        return True  # rejected at this head: a new push brings it back
    if cur.awaiting_approval_since is None:
        cur.awaiting_approval_since = d.now
        cur.done_commit = head
        # A verified DONE is the loop working: heal ladders start over (the hold skips the
        # roles' passes, where seeing work would reset them, so a nudge just before DONE left
        # Stalled=True for the whole wait).
        for agent in d.status.agents.values():
            agent.heal = healed(agent.heal)
        d.note(
            "awaiting-approval", None, "approval.manual",
            f"phase {phase.id} DONE ({where}); waiting for approval: `loopphase approve` or "
            f"kubectl annotate lp NAME {ANNOTATION}={phase.id}",
        )
    return True


def apply_requests(spec: LoopPhaseSpec, requests: tuple[ApprovalRequest, ...], d: Decision) -> None:
    cur = d.status.current
    if cur is None or d.status.completed_at is not None:
        return
    for request in requests:
        if request.id in cur.approvals_handled:
            continue
        cur.approvals_handled = [*cur.approvals_handled, request.id][-HANDLED_LIMIT:]
        target = request.phase or cur.id
        if target != cur.id:
            index = spec.phase_index(target)
            if index is not None and index > cur.index and request.verdict == "approve":
                # Approved ahead of time: the request is seen again (and applied) once that
                # phase is current, whose handled list starts empty. Said as such, not "ignored".
                d.note("approved", None, "approval.approve-ahead",
                       f"approve for phase {target!r} noted ahead of time: it applies when "
                       f"{target} is current (its DONE will advance without waiting)")
            elif index is None or index > cur.index:  # an earlier phase's: already past
                d.note("warning", None, f"approval.{request.verdict}",
                       f"{request.verdict} for phase {target!r} ignored: the current phase is "
                       f"{cur.id}" + ("" if index is None else "; a reject applies only to the "
                                      "phase awaiting approval"),
                       warning=True)
            continue
        if request.verdict == "approve":
            cur.approved = True
            waited = "its verified DONE advances" if cur.awaiting_approval_since else "it advances on DONE"
            d.note("approved", None, "approval.approve", f"phase {cur.id} approved; {waited}")
            continue
        if cur.awaiting_approval_since is None:
            d.note("warning", None, "approval.reject",
                   f"reject for phase {cur.id} ignored: it is not awaiting approval", warning=True)
            continue
        message = clean_message(request.message)
        cur.rejected_sha = cur.done_commit
        cur.awaiting_approval_since = None
        cur.done_commit = None
        cur.rejection = message
        d.note("rejected", "builder", "approval.reject",
               f"phase {cur.id} not approved: {message}; the builder is told, the phase stays")


def clean_message(message: str) -> str:
    """One typeable line: controls and newlines become spaces, at most MESSAGE_MAX characters."""
    flat = " ".join("".join(ch if ch.isprintable() else " " for ch in message).split())
    flat = flat[:MESSAGE_MAX] or "no reason given"
    return flat if untypeable_reason(flat) is None else "see the reviewer's notes"


REASON_PREFIX = "reject: "


def rejection_reason(message: str) -> str:
    """The reason of the SendText that types a reject message (``message_of`` reverses it)."""
    return REASON_PREFIX + message


def message_of(reason: str) -> str:
    return reason.removeprefix(REASON_PREFIX)


def rejection_text(phase_id: str, message: str) -> str:
    return (
        f"LoopPhase: phase {phase_id} was NOT approved by a human reviewer: {message} "
        "Address this, push, and write DONE again when it is done."
    )


def finalize(st: LoopPhaseStatus, now: datetime, set_condition: Callable[..., Any]) -> None:
    """AwaitingApproval condition; display phase AwaitingApproval over Running/Advancing/Pending."""
    cur = st.current
    awaiting = cur is not None and cur.awaiting_approval_since is not None and st.completed_at is None
    message = (
        f"phase {cur.id} is DONE and waits for approval: loopphase approve, or kubectl annotate "
        f"lp NAME {ANNOTATION}={cur.id}" if awaiting and cur is not None else ""
    )
    set_condition(st, "AwaitingApproval", awaiting, "PhaseDone" if awaiting else "NotAwaiting", message, now)
    if awaiting and st.phase in {"Running", "Advancing", "Pending", "Limited"}:
        st.phase, st.message = "AwaitingApproval", message

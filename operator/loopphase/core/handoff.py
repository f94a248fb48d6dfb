"""Handoff rules (pure): commit subjects and inbox files on the pushed branch -> pings."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import datetime

from loopphase.api.spec import LoopPhaseSpec
from loopphase.api.status import HandoffStatus, PendingPing
from loopphase.core.files import INBOX_OF, inbox_name, resolve
from loopphase.core.observations import Commit
from loopphase.core.userpattern import capped, compile_pattern


def scan_commits(
    spec: LoopPhaseSpec, handoff: HandoffStatus, commits: Iterable[Commit], now: datetime
) -> list[PendingPing]:
    """Claims ping the adversary, reviews ping the builder; updates the review bookkeeping."""
    claim = compile_pattern(spec.handoff.claim_pattern, ignore_case=True)
    review = compile_pattern(spec.handoff.review_pattern, ignore_case=True)
    passed = compile_pattern(spec.handoff.pass_pattern)
    pings: list[PendingPing] = []
    for commit in commits:
        subject = capped(commit.subject.strip())
        if claim.search(subject):
            handoff.claims_seen += 1
            handoff.review_pending = True
            pings.append(
                PendingPing(role="adversary", kind="claim", since=now,
                            reason=f"claim commit {commit.sha[:12]}: {subject[:120]}")
            )
        elif review.search(subject):
            handoff.reviews_seen += 1
            handoff.review_pending = False
            handoff.last_review_passed = bool(passed.search(subject))
            pings.append(
                PendingPing(role="builder", kind="review", since=now,
                            reason=f"review commit {commit.sha[:12]}: {subject[:120]}")
            )
    return pings


def content_hash(content: str) -> str:
    return hashlib.sha256(content.encode("utf-8")).hexdigest()[:16]


def scan_inboxes(
    spec: LoopPhaseSpec, handoff: HandoffStatus, files: Mapping[str, str | None], now: datetime
) -> list[PendingPing]:
    """A new or changed inbox file pings its reader; a deleted one is forgotten (consumed)."""
    pings: list[PendingPing] = []
    for role in INBOX_OF:
        name = inbox_name(spec, role)
        path, content = resolve(files, spec.repo.state_dir, name)
        if content is None or not content.strip():
            handoff.inbox_hashes.pop(role, None)
            continue
        digest = content_hash(content)
        if handoff.inbox_hashes.get(role) != digest:
            handoff.inbox_hashes[role] = digest
            pings.append(
                PendingPing(role=role, kind="inbox", since=now, reason=f"{path} changed ({digest})")
            )
    return pings


def queue_ping(handoff: HandoffStatus, ping: PendingPing) -> None:
    """Coalesce: at most one pending ping per (role, kind); the newest reason wins."""
    for index, pending in enumerate(handoff.pending_pings):
        if pending.role == ping.role and pending.kind == ping.kind:
            handoff.pending_pings[index] = pending.model_copy(
                update={"reason": ping.reason, "attempts": max(pending.attempts, ping.attempts)}
            )
            return
    handoff.pending_pings.append(ping)

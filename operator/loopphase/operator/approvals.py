"""Approve/reject on a cluster: annotations on the LoopPhase, read every tick.

    kubectl annotate lp NAME loopphase.dev/approve=PHASE
    kubectl annotate --overwrite lp NAME loopphase.dev/reject="what to fix"

Each becomes an ApprovalRequest whose id the core records once acted on, so an annotation
left in place is not applied twice (a reject's id carries the current phase and a digest of
its message: the same words in a later phase are a new request).
"""

from __future__ import annotations

import hashlib
from typing import Any

from loopphase.api.base import LABEL_PREFIX
from loopphase.core.observations import ApprovalRequest

APPROVE = f"{LABEL_PREFIX}approve"
REJECT = f"{LABEL_PREFIX}reject"


def from_annotations(meta: dict[str, Any], current_phase: str | None) -> list[ApprovalRequest]:
    annotations = meta.get("annotations") or {}
    out = []
    phase = str(annotations.get(APPROVE) or "").strip()
    if phase:
        out.append(ApprovalRequest(id=f"annotation/approve/{phase}", verdict="approve", phase=phase))
    message = str(annotations.get(REJECT) or "").strip()
    if message:
        digest = hashlib.sha256(message.encode("utf-8")).hexdigest()[:16]
        out.append(ApprovalRequest(id=f"annotation/reject/{current_phase}/{digest}", verdict="reject",
                                   phase=current_phase, message=message))
    return out

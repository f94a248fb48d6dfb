"""Phase advance starts the next phase's pods in the tick that verified the old ones gone.

Fault 4 of issue 14: on a real cluster the old pods were deleted and verified gone in the
advancing tick, but the new phase's pods were created only on the next tick (one whole signal
interval: 10 s of a 28.6 s advance). Here every tick is numbered and each request to the
emulator is attributed to the tick it happened in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from loopphase.operator import handlers
from loopphase.operator.kubeapi import KubeApi
from loopphase.testing.kmock_world import declare_resources
from operator_harness import (
    FakeShims,
    bare_repo,
    eventually,
    make_context,
    push_file,
    running_operator,
)
from test_operator_kopf import NS, create_lp, lp_body, obj


def requests_in(kmock: Any, method: str, plural: str, name: str) -> list[int]:
    """Positions (in kmock's request log) of METHOD requests on that object."""
    return [i for i, r in enumerate(list(kmock))
            if r.method == method and r.resource is not None and r.resource.plural == plural
            and (r.name == name or (method == "POST" and (r.data or {}).get("metadata", {})
                                    .get("name") == name))]


async def test_advance_creates_the_new_phase_pod_in_the_tick_that_deleted_the_old(
    kmock: Any, kube: KubeApi, tmp_path: Path, kubelet: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    declare_resources(kmock)
    ticks: list[tuple[int, int]] = []  # (first, last) request-log position of each tick
    inner = handlers.tick

    async def numbered_tick(*args: Any, **kwargs: Any) -> float:
        start = len(list(kmock))
        try:
            return await inner(*args, **kwargs)
        finally:
            ticks.append((start, len(list(kmock))))

    monkeypatch.setattr(handlers, "tick", numbered_tick)
    origin, work = bare_repo(tmp_path)
    ctx = make_context(kube, FakeShims(), tmp_path)
    body = lp_body(str(origin))
    body["spec"]["timing"]["signalInterval"] = 0.5
    async with running_operator(kmock, ctx):
        await create_lp(kube, body)
        await eventually(lambda: obj(kmock, "v1/pods", "demo-builder"))
        await kubelet.run(NS, "demo-builder", "127.0.0.2")
        await eventually(lambda: ((obj(kmock, "loopphase.dev/v1alpha1/loopphases", "demo") or {})
                                  .get("status") or {}).get("builder") == "Active")
        push_file(work, origin, "STATUS-1.md", "## DONE\n", "status: phase 1 done")
        await eventually(lambda: (p := obj(kmock, "v1/pods", "demo-builder"))
                         and p["metadata"]["labels"]["loopphase.dev/phase"] == "p2")
        await eventually(lambda: len(ticks) >= 2 and ticks[-1][0] > requests_in(
            kmock, "POST", "pods", "demo-builder")[-1])  # the advancing tick has ended
    deleted = requests_in(kmock, "DELETE", "pods", "demo-builder")
    created = requests_in(kmock, "POST", "pods", "demo-builder")
    assert len(deleted) == 1 and len(created) == 2, (deleted, created)

    def tick_of(position: int) -> int:
        return next(n for n, (first, last) in enumerate(ticks) if first <= position < last)

    assert tick_of(created[1]) - tick_of(deleted[0]) == 0, "the new pod waited for another tick"

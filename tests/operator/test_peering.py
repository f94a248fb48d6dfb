"""Two operator replicas on one cluster: kopf peering lets only the highest priority act.

Each replica gets its own context, so which one acted is visible: a tick registers the
LoopPhase's runtime in its replica's context (``ctx.runtimes``); a paused replica never ticks.
Without peering both would act; with equal priorities kopf pauses both (nothing would happen):
so the test fails in either broken configuration.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from loopphase.operator.kubeapi import KubeApi, custom_path
from loopphase.operator.main import parse_args, random_priority
from loopphase.testing.kmock_world import LP_RESOURCE, declare_resources
from operator_harness import (
    FakeShims,
    bare_repo,
    eventually,
    make_context,
    running_operator,
    start_operator,
)
from test_operator_kopf import lp_body as kopf_lp_body

NS = "team-a"
PEERINGS = "kopf.dev/v1/kopfpeerings"


def lp_body(url: str) -> dict[str, Any]:
    """test_operator_kopf's LoopPhase with one phase."""
    return kopf_lp_body(url, phases=[{"id": "p1", "plan": "PLAN-1.md", "statusFile": "STATUS-1.md"}])


@pytest.fixture()
def world(kmock: Any, kube: KubeApi) -> Any:
    declare_resources(kmock)
    kmock.resources[PEERINGS] = kmock.ResourceInfo(
        kind="KopfPeering", namespaced=True, verbs={"list", "watch", "get", "patch", "create"})
    kmock.objects[PEERINGS, NS, "loopphase"] = {
        "apiVersion": "kopf.dev/v1", "kind": "KopfPeering",
        "metadata": {"name": "loopphase", "namespace": NS, "uid": "uid-peering",
                     "resourceVersion": "1"},
        "status": {}}
    return kmock


async def test_only_the_highest_priority_replica_acts_and_the_other_takes_over(
    world: Any, kube: KubeApi, tmp_path: Path, kubelet: Any
) -> None:
    origin, _ = bare_repo(tmp_path)
    high_ctx = make_context(kube, FakeShims(), tmp_path / "high")
    low_ctx = make_context(kube, FakeShims(), tmp_path / "low")
    async with running_operator(world, low_ctx, peering_priority=100, peering_lifetime=2):
        _, high_task = await start_operator(world, high_ctx, peering_priority=200,
                                            peering_lifetime=2)
        try:
            # both replicas announced themselves before there is anything to act on
            await eventually(lambda: len(world.objects[PEERINGS, NS, "loopphase"].raw
                                          .get("status") or {}) >= 2)
            await kube.create(custom_path("loopphase.dev", "v1alpha1", NS, "loopphases"),
                              lp_body(str(origin)))
            await eventually(lambda: "uid-demo" in high_ctx.runtimes)  # the high one ticks
            await eventually(lambda: pod_exists(world, "demo-builder"))
            await kubelet.run(NS, "demo-builder", "127.0.0.2")
            await eventually(lambda: (world.objects[LP_RESOURCE, NS, "demo"].raw.get("status")
                                      or {}).get("ready") == "1/2")
            assert not low_ctx.runtimes, "the paused replica ticked"
        finally:
            # The high replica crashes (its pod is killed): it never says goodbye, so the low
            # one resumes once the high one's peering record expires (lifetime 2 s).
            high_task.cancel()
        await eventually(lambda: "uid-demo" in low_ctx.runtimes, timeout=20)
    # kopf's last peering touch of a cancelled operator waits for API credentials that are
    # gone by then; like a killed pod's process, the crashed replica is abandoned, not awaited.
    await asyncio.wait([high_task], timeout=1)


def pod_exists(kmock: Any, name: str) -> bool:
    try:
        return not kmock.objects["v1/pods", NS, name].deleted
    except KeyError:
        return False


def test_replicas_draw_distinct_priorities_unless_told() -> None:
    drawn = {random_priority() for _ in range(50)}
    assert len(drawn) == 50 and all(0 < p < 2**31 for p in drawn)
    assert parse_args(["--priority", "7"]).priority == 7
    assert parse_args([]).priority is None

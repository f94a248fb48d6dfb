"""Why the peering tests run each extra operator replica in its own event loop (issue 14).

The failover flake (the standby resumed, ran on.resume, and never started its tick daemon)
was not in the operator: it was two kopf operators sharing the test's event loop. When
``kopf.operator()`` exits it cancels every task created in its loop after it started, whoever
made it; the high replica's exit cancelled the low replica's freshly spawned daemon. The first
test pins that kopf behaviour (if kopf ever scopes its clean-up to its own tasks, it fails and
``ReplicaThread`` can go); the others prove the harness's isolation.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from loopphase.operator.kubeapi import KubeApi
from loopphase.testing.kmock_world import declare_resources
from operator_harness import FakeShims, ReplicaThread, make_context, start_operator


@pytest.fixture()
def world(kmock: Any) -> Any:
    declare_resources(kmock)
    return kmock


async def test_kopf_exit_cancels_tasks_it_did_not_start_in_its_loop(
    world: Any, kube: KubeApi, tmp_path: Path
) -> None:
    """The root cause: a task of someone else's, created in the loop after kopf started."""
    stop, task = await start_operator(world, make_context(kube, FakeShims(), tmp_path / "op"))
    bystander = asyncio.create_task(asyncio.sleep(60), name="another replica's daemon")
    stop.set()
    await asyncio.wait_for(task, timeout=20)
    await asyncio.wait([bystander], timeout=5)
    assert bystander.cancelled(), "kopf no longer cancels foreign tasks: ReplicaThread can go"


@pytest.mark.parametrize("how", ["stop", "crash"])
async def test_a_replica_in_its_own_loop_leaves_other_tasks_alone(
    world: Any, kube: KubeApi, tmp_path: Path, how: str
) -> None:
    replica = ReplicaThread(world, make_context(kube, FakeShims(), tmp_path / "op"))
    await replica.start()
    bystander = asyncio.create_task(asyncio.sleep(60), name="another replica's daemon")
    try:
        if how == "stop":
            await replica.stop()
            assert replica.task is not None and replica.task.done()
        else:
            replica.crash()
            assert replica.task is not None and not replica.task.done()  # frozen, not exited
            await replica.close()
        assert replica.loop.is_closed()
        assert not bystander.done(), "the replica's exit reached a task outside its loop"
    finally:
        bystander.cancel()

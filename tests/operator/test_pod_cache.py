"""The watch-fed pod cache: observe reads pods from the kopf index, never trusts a lagging one
after the operator's own create/delete, and notices out-of-band deletions through the watch.

A plain dict stands in for the kopf index in the runtime-level tests (``{(ns, name): [pod]}``,
the shape of ``kopf.Index``: key -> store of values), so the tests decide how far the "watch"
lags. The operator-level test runs the real kopf index against kmock.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from loopphase.operator.kubeapi import KubeApi, core_ref, custom_ref
from loopphase.operator.pod_cache import PodCache, slim_pod
from loopphase.runtime import k8s_objects as ko
from loopphase.runtime.kubernetes import KubernetesRuntime, pod_facts
from loopphase.testing.kmock_world import declare_resources
from operator_harness import FakeShims, bare_repo, eventually, make_context, running_operator
from test_operator_kopf import lp_body, obj, pod_creations
from test_runtime_kmock import OWNER, SPEC, Shims, plan, to_obs

NS = "team-a"
POD = "demo-builder"


def pod_gets(kmock: Any, name: str = POD) -> int:
    return sum(1 for r in list(kmock) if r.method == "GET" and r.resource is not None
               and r.resource.plural == "pods" and r.name == name)


class CountingShims(FakeShims):
    """Counts shim clients made (one per shim call: each tick's observe makes one per pod)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def __call__(self, url: str, token: str, timeout: float) -> FakeShims.Client:
        self.calls += 1
        return super().__call__(url, token, timeout)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def index() -> dict[tuple[str, str], list[dict[str, Any]]]:
    return {}


@pytest.fixture()
def clock() -> Clock:
    return Clock()


@pytest.fixture()
def cached_runtime(kube: KubeApi, index: dict[Any, Any], clock: Clock) -> KubernetesRuntime:
    pods = PodCache(verify_every=300.0, clock=clock)
    pods.attach(index)
    return KubernetesRuntime(kube, OWNER, SPEC, ko.PodSettings(shim_port=8790),
                             shim_factory=Shims(), to_observation=to_obs, delete_timeout=5.0,
                             poll_interval=0.01, pods=pods)


def watch_delivers(kmock: Any, index: dict[Any, Any], name: str = POD) -> None:
    """The watch catches up: the index holds what the API holds now."""
    stored = kmock.objects["v1/pods", NS, name]
    if stored.deleted:
        index.pop((NS, name), None)
    else:
        index[(NS, name)] = [slim_pod(dict(stored.raw))]


async def test_steady_observe_reads_the_index_without_a_get(
    kmock: Any, kube: KubeApi, kubelet: Any, cached_runtime: KubernetesRuntime,
    index: dict[Any, Any], clock: Clock,
) -> None:
    assert (await cached_runtime.start(plan())).ok
    await kubelet.run(NS, POD, "127.0.0.9")
    watch_delivers(kmock, index)
    before = pod_gets(kmock)
    for _ in range(5):
        seen = await cached_runtime.observe("builder")
        assert seen.present and seen.alive and seen.pod_name == POD
    assert pod_gets(kmock) == before
    # Absent from the (populated) index = absent, without a GET either.
    assert not (await cached_runtime.observe("adversary")).present
    assert pod_gets(kmock, "demo-adversary") == 0
    # Every verify_every seconds a cached pod is checked once against the API.
    clock.now += 301.0
    assert (await cached_runtime.observe("builder")).present
    assert pod_gets(kmock) == before + 1
    assert (await cached_runtime.observe("builder")).present
    assert pod_gets(kmock) == before + 1


async def test_created_pod_is_not_created_twice_when_the_watch_lags(
    kmock: Any, cached_runtime: KubernetesRuntime, index: dict[Any, Any],
) -> None:
    assert (await cached_runtime.start(plan())).ok
    assert pod_creations(kmock) == 1
    # The watch has not delivered the pod yet: observe must not report "absent" (which would
    # make the controller start it again); it asks the API instead.
    for _ in range(3):
        seen = await cached_runtime.observe("builder")
        assert seen.present and seen.pod_name == POD
    assert pod_creations(kmock) == 1
    # A second start anyway (e.g. another tick raced) adopts the pod: 409, no second pod.
    again = await cached_runtime.start(plan())
    assert again.ok and "adopted" in again.detail
    assert len([v for v in kmock.objects["v1/pods", NS, POD].history if v is None]) == 0
    # Once the watch shows it, the cache answers again (no more GETs).
    watch_delivers(kmock, index)
    assert (await cached_runtime.observe("builder")).present
    before = pod_gets(kmock)
    assert (await cached_runtime.observe("builder")).present
    assert pod_gets(kmock) == before


async def test_own_delete_is_not_hidden_by_a_stale_index(
    kmock: Any, kubelet: Any, cached_runtime: KubernetesRuntime, index: dict[Any, Any],
) -> None:
    assert (await cached_runtime.start(plan())).ok
    await kubelet.run(NS, POD, "127.0.0.9")
    watch_delivers(kmock, index)
    assert (await cached_runtime.observe("builder")).present
    assert (await cached_runtime.stop("builder")).ok
    # The index still shows the deleted pod (the DELETED event is not processed yet).
    assert (NS, POD) in index
    assert not (await cached_runtime.observe("builder")).present
    watch_delivers(kmock, index)
    gets = pod_gets(kmock)
    assert not (await cached_runtime.observe("builder")).present
    assert pod_gets(kmock) == gets


async def test_no_index_attached_falls_back_to_get(
    kmock: Any, kube: KubeApi, kubelet: Any,
) -> None:
    runtime = KubernetesRuntime(kube, OWNER, SPEC, ko.PodSettings(shim_port=8790),
                                shim_factory=Shims(), to_observation=to_obs, pods=PodCache())
    assert (await runtime.start(plan())).ok
    before = pod_gets(kmock)
    assert (await runtime.observe("builder")).present
    assert pod_gets(kmock) == before + 1


async def test_pod_deleted_out_of_band_is_noticed_through_the_watch(
    kmock: Any, kube: KubeApi, kubelet: Any, tmp_path: Path,
) -> None:
    declare_resources(kmock)
    origin, _ = bare_repo(tmp_path)
    shims = CountingShims()
    ctx = make_context(kube, shims, tmp_path)
    async with running_operator(kmock, ctx):
        await kube.create(custom_ref("loopphase.dev", "v1alpha1", NS, "loopphases"),
                          lp_body(str(origin)))
        for name, ip in ((POD, "127.0.0.2"), ("demo-adversary", "127.0.0.3")):
            await eventually(lambda name=name: obj(kmock, "v1/pods", name))
            await kubelet.run(NS, name, ip)
        await eventually(lambda: (o := obj(kmock, "loopphase.dev/v1alpha1/loopphases", "demo"))
                         and (o.get("status") or {}).get("ready") == "2/2")
        await eventually(lambda: ctx.pods.ready and ctx.pods.pending(NS, POD) is None
                         and (ctx.pods.cached(NS, POD) or {}).get("status", {}).get("podIP"))
        # Steady state: the ticks (each calls both shims) read the pods from the index.
        gets, calls = pod_gets(kmock), shims.calls
        await eventually(lambda: shims.calls >= calls + 6)
        assert pod_gets(kmock) == gets
        created = pod_creations(kmock)

        # Someone deletes the builder's pod through the API: the watch tells the index, the
        # next tick sees it absent and starts a new one (one, not two).
        await kube.delete(core_ref(NS, "pods", POD))
        await eventually(lambda: pod_creations(kmock) > created)
        await eventually(lambda: obj(kmock, "v1/pods", POD))
        assert pod_creations(kmock) == created + 1
        history = list(kmock.objects["v1/pods", NS, POD].history)
        assert history.count(None) == 1  # deleted once (out of band), created once after


def test_slim_pod_keeps_why_a_pending_pod_is_not_running() -> None:
    """pod_facts reads the same pending reason from the index's slim copy as from a GET."""
    pending = {
        "metadata": {"name": "demo-builder", "namespace": NS, "uid": "p1",
                     "ownerReferences": [{"uid": "owner", "controller": True}]},
        "status": {
            "phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "True"},
                           {"type": "Ready", "status": "False", "reason": "ContainersNotReady"}],
            "initContainerStatuses": [{"name": "workspace", "restartCount": 0,
                                       "state": {"waiting": {"reason": "PodInitializing"}}}],
            "containerStatuses": [{"name": "agent", "restartCount": 2, "image": "x" * 500,
                                   "state": {"waiting": {"reason": "ErrImagePull",
                                                         "message": "not found"}}}],
        },
    }
    full, slim = pod_facts(pending, "owner"), pod_facts(slim_pod(pending), "owner")
    assert full == slim
    assert slim.pending_reason == "PodInitializing"  # init containers come first
    no_init = {**pending, "status": {k: v for k, v in pending["status"].items()
                                     if k != "initContainerStatuses"}}
    assert pod_facts(slim_pod(no_init), "owner").pending_reason == "ErrImagePull: not found"
    unscheduled = {**pending, "status": {"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
         "message": "0/3 nodes are available"}]}}
    assert pod_facts(slim_pod(unscheduled), "owner").pending_reason == \
        "PodScheduled: Unschedulable: 0/3 nodes are available"
    running = {**pending, "status": {**pending["status"], "phase": "Running"}}
    assert "conditions" not in slim_pod(running)["status"]  # nothing kept once it runs

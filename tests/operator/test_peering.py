"""Peering: the operator makes its own peering object, and with two replicas on one cluster
only the highest priority acts.

Each replica gets its own context, so which one acted is visible: a tick registers the
LoopPhase's runtime in its replica's context (``ctx.runtimes``); a paused replica never ticks.
Without peering both would act; with equal priorities kopf pauses both (nothing would happen):
so the test fails in either broken configuration.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import kopf
import pytest
from loopphase.operator.kubeapi import KubeApi, custom_ref
from loopphase.operator.main import parse_args, random_priority
from loopphase.operator.peering import PeeringTarget, PeeringUnavailable, ensure_peering
from loopphase.operator.settings import configure
from loopphase.testing.kmock_world import LP_RESOURCE, declare_resources
from operator_harness import (
    CountingShimFactory,
    FakeShims,
    ReplicaThread,
    answer_with,
    bare_repo,
    eventually,
    make_context,
    running_operator,
)
from test_operator_kopf import lp_body as kopf_lp_body

NS = "team-a"
PEERINGS = "kopf.dev/v1/kopfpeerings"


def lp_body(url: str) -> dict[str, Any]:
    """test_operator_kopf's LoopPhase with one phase."""
    return kopf_lp_body(url, phases=[{"id": "p1", "plan": "PLAN-1.md", "statusFile": "STATUS-1.md"}])


def declare_peering_crd(kmock: Any) -> None:
    kmock.resources[PEERINGS] = kmock.ResourceInfo(
        kind="KopfPeering", namespaced=True, verbs={"list", "watch", "get", "patch", "create"})


@pytest.fixture()
def bare_world(kmock: Any) -> Any:
    """The CRDs installed (peering too), no peering object: a first install."""
    declare_resources(kmock)
    declare_peering_crd(kmock)
    return kmock


@pytest.fixture()
def world(kmock: Any, kube: KubeApi) -> Any:
    declare_resources(kmock)
    declare_peering_crd(kmock)
    kmock.objects[PEERINGS, NS, "loopphase"] = {
        "apiVersion": "kopf.dev/v1", "kind": "KopfPeering",
        "metadata": {"name": "loopphase", "namespace": NS, "uid": "uid-peering",
                     "resourceVersion": "1"},
        "status": {}}
    return kmock


@pytest.mark.parametrize("how", ["crash", "stop"])
async def test_only_the_highest_priority_replica_acts_and_the_other_takes_over(
    world: Any, kube: KubeApi, tmp_path: Path, kubelet: Any, how: str
) -> None:
    """The high replica goes away: ``crash`` (its pod is killed: no goodbye, the low one resumes
    once the high one's peering record expires, lifetime 2 s) or ``stop`` (a graceful stop:
    kopf removes its record, the low one resumes at once, while the high one still shuts down:
    the race that made this test flaky while both replicas shared one event loop, issue 14)."""
    origin, _ = bare_repo(tmp_path)
    high_ctx = make_context(kube, FakeShims(), tmp_path / "high")
    low_shims = CountingShimFactory(FakeShims())  # counts the low one's shim calls (ticks)
    low_ctx = make_context(kube, low_shims, tmp_path / "low")
    async with running_operator(world, low_ctx, peering_priority=100, peering_lifetime=2):
        # Its own thread and event loop, as its own pod (see ReplicaThread: kopf's exit would
        # cancel the low replica's tasks in a shared loop).
        high = ReplicaThread(world, high_ctx, peering_priority=200, peering_lifetime=2)
        await high.start()
        try:
            # both replicas announced themselves before there is anything to act on
            await eventually(lambda: len(world.objects[PEERINGS, NS, "loopphase"].raw
                                          .get("status") or {}) >= 2)
            await kube.create(custom_ref("loopphase.dev", "v1alpha1", NS, "loopphases"),
                              lp_body(str(origin)))
            await eventually(lambda: "uid-demo" in high_ctx.runtimes)  # the high one ticks
            await eventually(lambda: pod_exists(world, "demo-builder"))
            await kubelet.run(NS, "demo-builder", "127.0.0.2")
            await eventually(lambda: (world.objects[LP_RESOURCE, NS, "demo"].raw.get("status")
                                      or {}).get("ready") == "1/2")
            assert not low_ctx.runtimes, "the paused replica ticked"
            if how == "crash":
                high.crash()
            else:
                await high.stop()
            # the low one takes over: it ticks, and keeps ticking (its daemon lives on: a
            # daemon cancelled by the other replica's exit had ticked once at most)
            await eventually(lambda: "uid-demo" in low_ctx.runtimes, timeout=20)
            ticked = low_shims.count("127.0.0.2")
            await eventually(lambda: low_shims.count("127.0.0.2") >= ticked + 3)
        finally:
            await high.close()


async def test_namespaced_operator_creates_its_peering_object_and_handles_its_namespace(
    bare_world: Any, kube: KubeApi, tmp_path: Path, kubelet: Any
) -> None:
    """Fault 2: ``loopphase operator -n team-a`` with mandatory peering and no KopfPeering in
    team-a stayed paused forever (kopf waits for the object; nothing created it)."""
    origin, _ = bare_repo(tmp_path)
    ctx = make_context(kube, FakeShims(), tmp_path / "op")
    async with running_operator(bare_world, ctx, peering_priority=100):
        made = bare_world.objects[PEERINGS, NS, "loopphase"].raw
        assert made["kind"] == "KopfPeering" and made["metadata"]["namespace"] == NS
        await kube.create(custom_ref("loopphase.dev", "v1alpha1", NS, "loopphases"),
                          lp_body(str(origin)))
        await eventually(lambda: pod_exists(bare_world, "demo-builder"))
        # the operator announced itself in the object it made (kopf's keep-alive)
        await eventually(lambda: bare_world.objects[PEERINGS, NS, "loopphase"].raw.get("status"))


async def test_an_existing_peering_object_is_kept(world: Any, kube: KubeApi) -> None:
    created = await ensure_peering(_creator(kube), PeeringTarget("loopphase", (NS,)))
    assert created == []
    assert world.objects[PEERINGS, NS, "loopphase"].raw["metadata"]["uid"] == "uid-peering"


async def test_a_missing_peering_crd_is_an_error_naming_the_fix(
    kmock: Any, kube: KubeApi, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fault 1: the operator, finding no peering, paused forever with nothing at INFO."""
    declare_resources(kmock)
    # no kopf.dev CRDs: the API server answers 404 (kmock would store any kind it is sent)
    answer_with(kmock, monkeypatch, lambda r: "/apis/kopf.dev/" in str(r.url), 404, "NotFound",
                "the server could not find the requested resource")
    caplog.set_level(logging.INFO, logger="loopphase.operator.peering")
    with pytest.raises(PeeringUnavailable) as raised:
        await ensure_peering(_creator(kube), PeeringTarget("loopphase", (NS,)))
    assert "kubectl apply -k manifests/crds" in str(raised.value)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert errors and errors[0].getMessage().startswith("PeeringUnavailable: cannot create "
                                                        "KopfPeering 'loopphase'")


def test_cluster_wide_and_namespaced_targets() -> None:
    assert PeeringTarget("lp").objects() == [("clusterkopfpeerings", None, {
        "apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": "lp"}})]
    target = PeeringTarget("lp", ("a", "team-*", "b"))
    assert [(plural, ns) for plural, ns, _ in target.objects()] == [
        ("kopfpeerings", "a"), ("kopfpeerings", "b")]
    assert target.globs() == ["team-*"]


def test_peering_lifetime_is_an_option_and_reaches_kopf() -> None:
    """Fault 5: a replacement waits up to the dead replica's lifetime (kopf default 60 s)."""
    assert parse_args([]).peering_lifetime == 60
    args = parse_args(["--peering-lifetime", "20"])
    settings = configure(kopf.OperatorSettings(), standalone=False,
                         peering_lifetime=args.peering_lifetime)
    assert settings.peering.lifetime == 20 and settings.peering.mandatory


def _creator(api: KubeApi) -> Any:
    async def create(plural: str, namespace: str | None, body: dict[str, Any]) -> Any:
        assert namespace is not None
        return await api.create(custom_ref("kopf.dev", "v1", namespace, plural), body)
    return create


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

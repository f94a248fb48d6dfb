"""The operator's per-tick read savings: live body instead of a GET, TTL read cache, shared shim
session. Each must stay correct: never decide from a status older than our own last write,
re-read after a conflict or a failed tick, and see changes within the cache's TTL."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import aiohttp
from loopphase.operator.context import role_prompts
from loopphase.operator.kubeapi import KubeApi, KubeApiError, core_ref
from loopphase.operator.read_cache import ReadCache
from loopphase.operator.status_io import LiveObjects, write_status
from loopphase.runtime.kubernetes import SharedShimFactory, _stale_connection
from loopphase.shim.client import ShimError

BASE: dict[str, Any] = {
    "apiVersion": "loopphase.dev/v1alpha1", "kind": "LoopPhase",
    "metadata": {"name": "demo", "namespace": "team-a", "uid": "u1", "resourceVersion": "5"},
    "spec": {"x": 1},
    "status": {"phase": "Running", "message": "old"},
}


class FakeApi:
    """get/merge_patch against one stored object; records calls; PATCH returns the object."""

    def __init__(self, obj: dict[str, Any]) -> None:
        self.obj = copy.deepcopy(obj)
        self.gets: list[str] = []
        self.patches: list[dict[str, Any]] = []
        self.conflict_next = False

    async def get(self, path: str) -> dict[str, Any] | None:
        self.gets.append(path)
        return copy.deepcopy(self.obj)

    async def merge_patch(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self.patches.append(body)
        if self.conflict_next:
            self.conflict_next = False
            self.obj["status"]["message"] = "another writer"
            raise KubeApiError(409, "Conflict", "stale")
        self.obj["status"].update(body["status"])
        self.obj["metadata"]["resourceVersion"] = str(int(self.obj["metadata"]["resourceVersion"]) + 1)
        return copy.deepcopy(self.obj)


async def test_live_body_is_used_without_a_get() -> None:
    api, live = FakeApi(BASE), LiveObjects()
    obj = await live.current(api, "team-a", "demo", copy.deepcopy(BASE))  # type: ignore[arg-type]
    assert obj is not None and obj["status"]["message"] == "old"
    assert api.gets == [] and live.gets == 0


async def test_own_write_is_used_until_the_watch_delivers_it_then_the_body_again() -> None:
    api, live = FakeApi(BASE), LiveObjects()
    stale_body = copy.deepcopy(BASE)
    obj = await live.current(api, "team-a", "demo", stale_body)  # type: ignore[arg-type]
    assert obj is not None
    wanted = {**obj["status"], "message": "new"}
    assert await write_status(api, obj, wanted, live)  # type: ignore[arg-type]
    assert api.patches[-1]["metadata"] == {"resourceVersion": "5"}
    # The watch has not delivered our write: the body still shows the old status.
    again = await live.current(api, "team-a", "demo", stale_body)  # type: ignore[arg-type]
    assert again is not None and again["status"]["message"] == "new"
    assert again["metadata"]["resourceVersion"] == "6"  # the next write is conflict-checked
    # The watch caught up (or someone changed it later): the body wins from now on.
    fresh = copy.deepcopy(api.obj)
    fresh["spec"] = {"x": 2}
    now = await live.current(api, "team-a", "demo", fresh)  # type: ignore[arg-type]
    assert now is not None and now["spec"] == {"x": 2}
    assert api.gets == []


async def test_conflict_with_another_writer_makes_the_next_tick_read_fresh() -> None:
    api, live = FakeApi(BASE), LiveObjects()
    body = copy.deepcopy(BASE)
    obj = await live.current(api, "team-a", "demo", body)  # type: ignore[arg-type]
    assert obj is not None
    api.conflict_next = True
    assert not await write_status(api, obj, {**obj["status"], "message": "mine"}, live)  # type: ignore[arg-type]
    gets = len(api.gets)  # the conflict re-read
    nxt = await live.current(api, "team-a", "demo", body)  # type: ignore[arg-type]
    assert nxt is not None and nxt["status"]["message"] == "another writer"
    assert len(api.gets) == gets + 1 and live.gets == 1
    # ... and only once: afterwards the body is trusted again.
    await live.current(api, "team-a", "demo", body)  # type: ignore[arg-type]
    assert len(api.gets) == gets + 1


async def test_failed_tick_or_missing_body_reads_with_a_get() -> None:
    api, live = FakeApi(BASE), LiveObjects()
    body = copy.deepcopy(BASE)
    live.invalidate(body)
    await live.current(api, "team-a", "demo", body)  # type: ignore[arg-type]
    await live.current(api, "team-a", "demo", None)  # type: ignore[arg-type]
    assert len(api.gets) == 2


async def test_read_cache_serves_within_ttl_and_rereads_after() -> None:
    now = [0.0]
    cache = ReadCache(ttl=10.0, clock=lambda: now[0])
    cm = {"data": {"builder": "v1"}}
    api = FakeApi({"metadata": {}, "status": {}})
    api.obj = cm
    path = core_ref("team-a", "configmaps", "prompts")
    assert await cache.get(api, path) == cm  # type: ignore[arg-type]
    api.obj = {"data": {"builder": "v2"}}
    now[0] = 9.9
    assert (await cache.get(api, path))["data"]["builder"] == "v1"  # type: ignore[arg-type,index]
    now[0] = 10.0
    assert (await cache.get(api, path))["data"]["builder"] == "v2"  # type: ignore[arg-type,index]
    assert len(api.gets) == 2


async def test_role_prompts_use_the_cache(kube: KubeApi, kmock: Any, tmp_path: Path) -> None:
    from loopphase.api.spec import LoopPhaseSpec
    from loopphase.testing.kmock_world import declare_resources

    declare_resources(kmock)
    await kube.create(core_ref("team-a", "configmaps"), {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "p", "namespace": "team-a"}, "data": {"b": "be brief"}})
    spec = LoopPhaseSpec.model_validate({
        "repo": {"url": "https://example.invalid/r.git"},
        "phases": [{"id": "p1", "plan": "P.md", "statusFile": "S.md"}],
        "agents": {"builder": {"prompt": {"configMapKeyRef": {"name": "p", "key": "b"}}}},
    })
    cache = ReadCache(ttl=60.0)
    mark = len(list(kmock))
    for _ in range(3):
        prompts = await role_prompts(kube, "team-a", spec, cache)
        assert prompts["builder"] == "be brief"
    gets = [r for r in list(kmock)[mark:] if r.method == "GET"]
    assert len(gets) == 1


async def test_shared_shim_factory_shares_one_session_and_closes_it() -> None:
    factory = SharedShimFactory()
    a = factory("http://127.0.0.2:8790", "t", 1.0)
    b = factory("http://127.0.0.3:8790", "t", 1.0)
    session = factory.session()
    assert a._session is session and b._session is session  # type: ignore[attr-defined]
    await a.close()  # type: ignore[attr-defined]  # a client never closes the shared session
    assert not session.closed
    await factory.aclose()
    assert session.closed


def test_only_a_dropped_keepalive_connection_is_retried() -> None:
    dropped = ShimError("GET state: ServerDisconnectedError")
    dropped.__cause__ = aiohttp.ServerDisconnectedError()
    assert _stale_connection(dropped)
    refused = ShimError("GET state: HTTP 500")
    assert not _stale_connection(refused)
    assert not _stale_connection(TimeoutError())

"""Operator robustness under kopf against kmock: restart mid-limit-window, suspend/resume, 409s.

(a) and (b) run REAL shims through the fake kubelet (fake_kubelet.py); (c) uses fake shims.
kmock limits (see conftest): it has no resourceVersion, so it never answers 409 to a stale
status patch by itself; and its reactions (``kmock[...] << 409``) run only AFTER the emulator
has already stored the mutation, so a reaction-made 409 would still change the object (a lie no
real API server tells). Test (c) therefore puts a wrapper in front of the emulator's request
handler that answers one status PATCH with a real HTTP 409 Status and stores nothing, exactly
what an API server does on a resourceVersion conflict.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp.web
import pytest
from fake_kubelet import FakeKubelet, free_port
from loopphase.operator.kubeapi import KubeApi, custom_ref
from loopphase.testing.kmock_world import declare_resources
from operator_harness import (
    CountingShimFactory,
    FakeShims,
    bare_repo,
    eventually,
    make_context,
    running_operator,
)
from test_real_shims import (
    LIMITED_BUILDER,
    LP,
    NS,
    WORKING,
    create_lp,
    lp_body,
    lp_status,
    pod,
    real_context,
)

LP_PATH = custom_ref("loopphase.dev", "v1alpha1", NS, "loopphases", "demo")


def requests_of(kmock: Any, method: str, plural: str, *, since: int = 0,
                name: str | None = None) -> list[Any]:
    return [r for r in list(kmock)[since:] if r.method == method and r.resource is not None
            and r.resource.plural == plural and (name is None or r.name == name)]


def pod_posts(kmock: Any, since: int = 0) -> int:
    return len(requests_of(kmock, "POST", "pods", since=since))


def builder_limited(kmock: Any) -> dict[str, Any] | None:
    st = lp_status(kmock)
    b = (st.get("agents") or {}).get("builder") or {}
    a = (st.get("agents") or {}).get("adversary") or {}
    if b.get("state") == "Limited" and b.get("limit") and a.get("state") == "Active":
        return st
    return None


def history_is_sound(st: dict[str, Any]) -> list[int]:
    seqs = [h["seq"] for h in st.get("history") or []]
    assert seqs == sorted(set(seqs)), f"history seq numbers repeat or go backwards: {seqs}"
    assert not seqs or seqs[-1] == st["historySeq"], (seqs, st.get("historySeq"))
    return seqs


@pytest.mark.slow
async def test_operator_restart_mid_limit_window_keeps_window_and_pods(
    kmock: Any, kube: KubeApi, fake_kubelet: FakeKubelet, tmp_path: Path
) -> None:
    declare_resources(kmock)
    origin, _ = bare_repo(tmp_path)
    port = free_port()
    async with running_operator(kmock, real_context(tmp_path, port)):
        await create_lp(kube, lp_body(str(origin), LIMITED_BUILDER, WORKING))
        before = await eventually(lambda: builder_limited(kmock), timeout=30)
    limit = before["agents"]["builder"]["limit"]
    posts, shims = pod_posts(kmock), list(fake_kubelet.started)
    assert posts == 2 and len(shims) == 2

    # A new operator process: no memory, the same emulator state (pods, Secret, status).
    ctx2 = real_context(tmp_path, port)
    calls = ctx2.shim_factory = CountingShimFactory(ctx2.shim_factory)
    async with running_operator(kmock, ctx2):
        # The new operator has observed the shims and written status again (several ticks:
        # each tick asks both shims; pods come from the watch-fed index, the LoopPhase from
        # kopf's watch).
        await eventually(lambda: calls.count() >= 12, timeout=20)
        await eventually(lambda: "uid-demo" in ctx2.runtimes
                         and ctx2.runtimes["uid-demo"]._tokens)
        after = await eventually(lambda: builder_limited(kmock), timeout=10)
    assert pod_posts(kmock) == posts, "the restarted operator created a pod"
    assert fake_kubelet.started == shims, "a shim was restarted"
    assert all(s.proc.poll() is None for s in shims)
    kept = after["agents"]["builder"]["limit"]
    assert kept["until"] == limit["until"]
    assert kept["nudges"] == limit["nudges"]
    assert kept["armedAt"] == limit["armedAt"]
    assert after["agents"]["builder"]["restarts"] == before["agents"]["builder"]["restarts"]
    history_is_sound(after)
    assert history_is_sound(before) == history_is_sound(after)[:len(before["history"])]


@pytest.mark.slow
async def test_suspend_stops_pods_and_resume_restarts_them_warm_with_state_intact(
    kmock: Any, kube: KubeApi, fake_kubelet: FakeKubelet, tmp_path: Path
) -> None:
    declare_resources(kmock)
    origin, _ = bare_repo(tmp_path)
    ctx = real_context(tmp_path, free_port())
    calls = ctx.shim_factory = CountingShimFactory(ctx.shim_factory)
    async with running_operator(kmock, ctx):
        await create_lp(kube, lp_body(str(origin), LIMITED_BUILDER, WORKING))
        before = await eventually(lambda: builder_limited(kmock), timeout=30)
        limit = before["agents"]["builder"]["limit"]
        first = list(fake_kubelet.started)

        await kube.merge_patch(LP_PATH, {"spec": {"suspend": True}})
        suspended = await eventually(
            lambda: (s := lp_status(kmock)).get("phase") == "Suspended"
            and pod(kmock, "demo-builder") is None and pod(kmock, "demo-adversary") is None
            and all(x in fake_kubelet.stopped for x in first) and s, timeout=30)
        assert all(s.proc.poll() is not None for s in first), "a shim outlived its pod"
        assert suspended["suspendedAt"]
        kept = suspended["agents"]["builder"]["limit"]
        assert kept["until"] == limit["until"] and kept["nudges"] == limit["nudges"]

        await kube.merge_patch(LP_PATH, {"spec": {"suspend": False}})
        resumed = await eventually(
            lambda: (s := lp_status(kmock)).get("phase") not in (None, "Suspended")
            and (s.get("agents") or {}).get("adversary", {}).get("state") == "Active"
            and "demo-adversary" in fake_kubelet.running and s, timeout=30)
        # A few more ticks: the builder stays down for the rest of its window (no restarts
        # inside a limit window; it starts once the window ends, ~10 minutes out here).
        adversary_ip = fake_kubelet.running["demo-adversary"].ip
        mark = calls.count(adversary_ip)
        await eventually(lambda: calls.count(adversary_ip) >= mark + 5, timeout=20)
        resumed = lp_status(kmock)

    again = fake_kubelet.started[len(first):]
    assert [s.name for s in again] == ["demo-adversary"]
    assert pod(kmock, "demo-builder") is None
    assert again[0].args[again[0].args.index("--mode") + 1] == "warm", again[0].args
    assert pod(kmock, "demo-adversary")["metadata"]["annotations"][
        "loopphase.dev/spawn-mode"] == "warm"
    assert resumed.get("suspendedAt") is None
    assert resumed["adversary"] == "Active"
    assert resumed["agents"]["builder"]["state"] == "Limited"
    kept = resumed["agents"]["builder"]["limit"]
    assert kept == {**limit, **{k: kept[k] for k in ("lastProbeAt",) if k in kept}}, (kept, limit)
    seqs = history_is_sound(resumed)
    assert seqs[:len(before["history"])] == [h["seq"] for h in before["history"]]
    kinds = [h["kind"] for h in resumed["history"]]
    assert "suspend" in kinds and "resume" in kinds, kinds


def conflict_once(kmock: Any, monkeypatch: pytest.MonkeyPatch,
                  matches: Callable[[Any], bool],
                  other_writer: Callable[[], None] | None = None) -> list[Any]:
    """Answer the first request that ``matches`` with 409 Conflict, storing nothing.

    (kmock's emulator is a slotted attrs class: the wrapper goes on the class, for this
    emulator instance only, and monkeypatch restores it after the test.)"""
    cls = type(kmock)
    original = cls._handle
    hits: list[Any] = []

    async def handle(self: Any, request: Any) -> aiohttp.web.StreamResponse:
        if self is kmock and not hits and matches(request):
            hits.append(request)
            if other_writer is not None:
                other_writer()  # the write that made ours stale
            return aiohttp.web.json_response(
                {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Conflict",
                 "code": 409, "message": "the object has been modified; please apply your "
                 "changes to the latest version and try again"}, status=409)
        return await original(self, request)

    monkeypatch.setattr(cls, "_handle", handle)
    return hits


def is_status_patch(request: Any) -> bool:
    return (request.method == "PATCH" and request.resource is not None
            and request.resource.plural == "loopphases" and request.subresource == "status"
            and "agents" in ((request.data or {}).get("status") or {}))


async def test_status_patch_409_is_retried_next_tick_nothing_lost_or_duplicated(
    kmock: Any, kube: KubeApi, tmp_path: Path, kubelet: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tick that started both pods gets a 409 on its status write (as when kopf touched the
    object's metadata meanwhile). The write is retried against the re-read object (its status
    unchanged), so the record of the starts is not lost, and the next ticks adopt the pods
    instead of creating second ones. (Before the fix in status_io.write_status, a 409 dropped
    the tick's record: the pods existed but status.history never said they were started.)"""
    declare_resources(kmock)
    origin, _ = bare_repo(tmp_path)
    hits = conflict_once(kmock, monkeypatch, is_status_patch)
    shims = FakeShims()
    ctx = make_context(kube, shims, tmp_path)
    async with running_operator(kmock, ctx):
        body = lp_body(str(origin), WORKING, WORKING)
        await create_lp(kube, body)
        # The first tick started both pods but its status write hit the 409 (nothing stored).
        await eventually(lambda: hits)
        conflicted = hits[0].data["status"]
        assert conflicted["agents"]["builder"]["state"]
        await eventually(lambda: pod(kmock, "demo-builder") and pod(kmock, "demo-adversary"))
        await kubelet.run(NS, "demo-builder", "127.0.0.2")
        await kubelet.run(NS, "demo-adversary", "127.0.0.3")
        st = await eventually(lambda: (s := lp_status(kmock)).get("builder") == "Active"
                              and s.get("adversary") == "Active" and s)

    # The next tick re-read the (unchanged) object and re-decided: the starts were adopted,
    # never duplicated: one pod per role, each created exactly once and never deleted.
    for name in ("demo-builder", "demo-adversary"):
        versions = list(kmock.objects["v1/pods", NS, name].history)
        assert None not in versions, f"{name} was deleted/recreated"
    created = [r for r in requests_of(kmock, "POST", "pods")]
    assert len({r.data["metadata"]["name"] for r in created}) == 2
    seqs = history_is_sound(st)
    assert seqs == list(range(1, len(seqs) + 1)), seqs  # no gap: nothing half-recorded
    starts = [(h["kind"], h["role"]) for h in st["history"] if h.get("role") in ("builder", "adversary")
              and h["kind"] == "start"]
    assert sorted(starts) == [("start", "adversary"), ("start", "builder")], st["history"]
    # what the conflicted write wanted to record is in the stored status now (not lost)
    wanted = [(h["kind"], h.get("role")) for h in conflicted.get("history") or []]
    stored = [(h["kind"], h.get("role")) for h in st["history"]]
    for entry in wanted:
        assert entry in stored, (entry, stored)
    assert lp_status(kmock).get("agents") and LP


async def test_status_409_after_another_writer_is_dropped_and_redecided_without_duplicates(
    kmock: Any, kube: KubeApi, tmp_path: Path, kubelet: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer changed .status between our read and our patch: the 409 is not retried
    blindly (that would overwrite their write with a diff against a stale base); the next tick
    re-reads and re-decides. Still one pod per role, and history seq numbers stay unique."""
    declare_resources(kmock)
    origin, _ = bare_repo(tmp_path)

    def other_writer() -> None:
        kmock.objects[LP, NS, "demo"].patch({"status": {"message": "another writer was here"}})

    hits = conflict_once(kmock, monkeypatch, is_status_patch, other_writer)
    ctx = make_context(kube, FakeShims(), tmp_path)
    async with running_operator(kmock, ctx):
        await create_lp(kube, lp_body(str(origin), WORKING, WORKING))
        await eventually(lambda: hits)
        await eventually(lambda: pod(kmock, "demo-builder") and pod(kmock, "demo-adversary"))
        await kubelet.run(NS, "demo-builder", "127.0.0.2")
        await kubelet.run(NS, "demo-adversary", "127.0.0.3")
        st = await eventually(lambda: (s := lp_status(kmock)).get("builder") == "Active"
                              and s.get("adversary") == "Active" and s)
    status_patches = requests_of(kmock, "PATCH", "loopphases")
    after_conflict = [r for r in status_patches if r.id > hits[0].id
                      and r.subresource == "status"]
    assert after_conflict, "the status was never written after the conflict"
    for name in ("demo-builder", "demo-adversary"):
        assert None not in list(kmock.objects["v1/pods", NS, name].history)
    assert st["message"] != "another writer was here"  # re-decided from the re-read state
    seqs = history_is_sound(st)
    assert seqs == list(range(1, len(seqs) + 1)), seqs

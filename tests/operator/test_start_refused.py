"""A start the API server refuses shows in the LoopPhase's conditions, not only in Events.

Fault 3 of issue 14: with the OwnerReferencesPermissionEnforcement admission plugin (default
on OpenShift) and no ``update`` on ``loopphases/finalizers``, every owned object is refused
with a 403; the LoopPhase sat in ``Pending … starting agents``. Here kmock answers every pod
POST with that 403 (storing nothing, as the API server does).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from loopphase.operator.kubeapi import KubeApi
from loopphase.testing.kmock_world import declare_resources
from operator_harness import (
    FakeShims,
    answer_with,
    bare_repo,
    eventually,
    make_context,
    running_operator,
)
from test_operator_kopf import create_lp, events, lp_body, obj

ADMISSION = ('pods "demo-builder" is forbidden: cannot set blockOwnerDeletion if an '
             "ownerReference refers to a resource you can't set finalizers on: , <nil>")


async def test_a_403_on_pod_creation_is_degraded_start_refused_with_the_api_message(
    kmock: Any, kube: KubeApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    declare_resources(kmock)
    refused = answer_with(kmock, monkeypatch,
                          lambda r: r.method == "POST" and r.resource is not None
                          and r.resource.plural == "pods", 403, "Forbidden", ADMISSION)
    origin, _ = bare_repo(tmp_path)
    ctx = make_context(kube, FakeShims(), tmp_path)
    async with running_operator(kmock, ctx):
        await create_lp(kube, lp_body(str(origin)))

        def degraded() -> dict[str, Any] | None:
            status = (obj(kmock, "loopphase.dev/v1alpha1/loopphases", "demo") or {}).get(
                "status") or {}
            found = [c for c in status.get("conditions") or [] if c["type"] == "Degraded"]
            return found[0] if found and found[0]["status"] == "True" else None

        condition = await eventually(degraded)
        assert refused, "no pod POST reached the emulator"
        assert condition["reason"] == "StartRefused"
        assert ADMISSION in condition["message"] and "403" in condition["message"]
        status = obj(kmock, "loopphase.dev/v1alpha1/loopphases", "demo")["status"]
        assert status["phase"] == "Degraded"
        assert status["agents"]["builder"]["startError"].endswith(ADMISSION)
        # the Event is still posted too (kopf posts Events from a background queue)
        await eventually(lambda: any(e.get("type") == "Warning" and ADMISSION in
                                     e.get("message", "") for e in events(kmock)))

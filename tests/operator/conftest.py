"""Fixtures for the operator tests: the kmock Kubernetes emulator and a KubeApi pointed at it.

kmock (by kopf's author) is an in-process HTTP server that stores objects in memory. What it
does NOT emulate, and the product code therefore cannot be checked for here: resourceVersion
and optimistic concurrency (no 409 on a stale resourceVersion unless a test injects one), the
status subresource's isolation (a PATCH to /status merges into the whole object), label and
field selectors on lists, generation / observedGeneration bumps, graceful deletion (pods vanish
at once unless they carry finalizers), and garbage collection through ownerReferences.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from loopphase.operator.kubeapi import KubeApi, configuration_for, core_ref


@pytest.fixture()
async def kube(kmock: Any) -> AsyncIterator[KubeApi]:
    api = KubeApi(configuration_for(str(kmock.url)), timeout=5.0)
    try:
        yield api
    finally:
        await api.close()


class Kubelet:
    """Play the kubelet: give a pod an IP and a phase (kmock schedules nothing by itself).

    Through the API (a PATCH), not kmock's object store: only API writes reach watch streams,
    and the operator reads pods from a watch-fed index."""

    def __init__(self, api: KubeApi) -> None:
        self.api = api

    async def run(self, namespace: str, name: str, ip: str, phase: str = "Running") -> None:
        await self.api.merge_patch(core_ref(namespace, "pods", name), {
            "status": {"phase": phase, "podIP": ip, "containerStatuses": [{"restartCount": 0}]}
        })


@pytest.fixture()
def kubelet(kube: KubeApi) -> Kubelet:
    return Kubelet(kube)


@pytest.fixture()
async def fake_kubelet(kmock: Any, tmp_path: Any) -> AsyncIterator[Any]:
    """A FakeKubelet (tests/operator/fake_kubelet.py) running REAL shims for kmock's pods.

    Teardown stops every shim and verifies it is gone; anything forced fails the test."""
    from fake_kubelet import FakeKubelet, loopback_usable

    if not loopback_usable("127.0.0.2"):
        pytest.skip("127.0.0.2 cannot be bound here (127.0.0.0/8 is not all loopback)")
    kubelet = FakeKubelet(kmock, tmp_path / "kubelet")
    kubelet.start()
    try:
        yield kubelet
    finally:
        await kubelet.close()
        assert all(s.proc.poll() is not None for s in kubelet.started), "a shim is still running"
        assert not kubelet.errors, kubelet.errors

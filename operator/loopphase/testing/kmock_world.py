"""The Kubernetes resources the operator needs, declared on a kmock API emulator.

One definition for the operator tests and the scale benchmark.
"""

from __future__ import annotations

from typing import Any

LP_RESOURCE = "loopphase.dev/v1alpha1/loopphases"


def declare_resources(kmock: Any) -> None:
    kmock.resources[LP_RESOURCE] = kmock.ResourceInfo(
        kind="LoopPhase", singular="loopphase", namespaced=True, shortnames={"lp"},
        subresources={"status"}, verbs={"list", "watch", "get", "patch", "create", "delete"},
    )
    for plural, kind in [("pods", "Pod"), ("events", "Event"), ("secrets", "Secret"),
                         ("configmaps", "ConfigMap"),
                         ("persistentvolumeclaims", "PersistentVolumeClaim")]:
        kmock.resources[f"v1/{plural}"] = kmock.ResourceInfo(
            kind=kind, namespaced=True, verbs={"list", "watch", "get", "create", "patch", "delete"})
    kmock.resources["networking.k8s.io/v1/networkpolicies"] = kmock.ResourceInfo(
        kind="NetworkPolicy", namespaced=True, verbs={"list", "watch", "get", "create", "delete"})
    # kopf's namespace & CRD observers wait for these two resources to be discoverable.
    kmock.resources["v1/namespaces"] = kmock.ResourceInfo(
        kind="Namespace", namespaced=False, verbs={"list", "watch", "get"})
    kmock.resources["apiextensions.k8s.io/v1/customresourcedefinitions"] = kmock.ResourceInfo(
        kind="CustomResourceDefinition", namespaced=False, verbs={"list", "watch", "get"})

"""``kubectl kustomize manifests/`` renders, and what it renders is what we mean to install:
the CRD is the generated one, RBAC is least privilege (no exec, no wildcards, Secrets only
get/create), the Deployment runs under the bound ServiceAccount, the NetworkPolicy selects it.
Needs only the kubectl binary (no cluster); skipped when it is missing."""

from __future__ import annotations

import shutil
import subprocess
from collections import defaultdict
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "loopphase-system"
FORBIDDEN_SUBRESOURCES = ("exec", "attach", "portforward", "proxy")
FORBIDDEN_VERBS = {"*", "update", "escalate", "bind", "impersonate", "deletecollection"}


@cache
def _render(where: str = "manifests") -> tuple[dict[str, Any], ...]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: cannot render manifests/ with kustomize")
    done = subprocess.run([kubectl, "kustomize", str(ROOT / where)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"kubectl kustomize {where}/ failed: {done.stderr}"
    return tuple(d for d in yaml.safe_load_all(done.stdout) if d)


@pytest.fixture()
def rendered() -> list[dict[str, Any]]:
    return list(_render())


@pytest.fixture()
def rendered_crds() -> list[dict[str, Any]]:
    return list(_render("manifests/crds"))


def one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind
             and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, got {len(found)}"
    return found[0]


def grants(role: dict[str, Any]) -> dict[tuple[str, str], set[str]]:
    """(apiGroup, resource) -> verbs, over every rule (a resource may appear in several)."""
    out: dict[tuple[str, str], set[str]] = defaultdict(set)
    for rule in role["rules"]:
        assert "nonResourceURLs" not in rule, rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                out[(group, resource)] |= set(rule["verbs"])
    return dict(out)


def test_crds_render_alone_and_first(rendered_crds: list[dict[str, Any]]) -> None:
    """Fault 1: CRDs and objects of their kinds in one apply fail on a fresh cluster
    (``no matches for kind "ClusterKopfPeering"``): the CRDs are their own step."""
    assert sorted(d["metadata"]["name"] for d in rendered_crds) == [
        "clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev", "loopphases.loopphase.dev"]
    assert {d["kind"] for d in rendered_crds} == {"CustomResourceDefinition"}


def test_renders_the_expected_objects(rendered: list[dict[str, Any]]) -> None:
    kinds = sorted((d["kind"], d["metadata"]["name"]) for d in rendered)
    # only built-in kinds: the second apply never needs discovery of a CRD made a moment ago
    # (the operator creates its ClusterKopfPeering itself)
    assert kinds == sorted([
        ("Namespace", NAMESPACE),
        ("ServiceAccount", "loopphase-operator"),
        ("ClusterRole", "loopphase-operator"),
        ("ClusterRoleBinding", "loopphase-operator"),
        ("Deployment", "loopphase-operator"),
        ("NetworkPolicy", "loopphase-operator"),
        ("Service", "loopphase-operator-metrics"),
    ])
    for kind in ("ServiceAccount", "Deployment", "NetworkPolicy", "Service"):
        assert one(rendered, kind)["metadata"]["namespace"] == NAMESPACE, kind


def test_crd_equals_the_generated_crd(rendered_crds: list[dict[str, Any]]) -> None:
    generated = yaml.safe_load((ROOT / "crds" / "loopphase.yaml").read_text())
    assert one(rendered_crds, "CustomResourceDefinition", "loopphases.loopphase.dev") == generated


def test_rbac_is_least_privilege(rendered: list[dict[str, Any]]) -> None:
    role = one(rendered, "ClusterRole")
    granted = grants(role)
    for (group, resource), verbs in granted.items():
        assert "*" not in (group, resource), (group, resource)
        assert not any(sub in resource for sub in FORBIDDEN_SUBRESOURCES), resource
        allowed = {"update"} if resource == "loopphases/finalizers" else set()
        assert not verbs & FORBIDDEN_VERBS - allowed, (resource, verbs & FORBIDDEN_VERBS)
    # What the operator code calls: Secrets by name (the shim token, the credentials Secret)
    # and create of the shim token; never a list or watch of Secrets.
    assert granted[("", "secrets")] == {"get", "create"}
    assert granted[("", "pods")] == {"get", "list", "watch", "create", "delete"}
    assert granted[("", "configmaps")] == {"get", "create", "patch"}
    assert granted[("", "persistentvolumeclaims")] == {"get", "create"}
    assert granted[("", "events")] == {"create"}
    assert ("events.k8s.io", "events") not in granted  # kopf posts core v1 Events only
    # kopf observes CRDs and namespaces with list + watch; nothing GETs them.
    assert granted[("apiextensions.k8s.io", "customresourcedefinitions")] == {"list", "watch"}
    assert granted[("", "namespaces")] == {"list", "watch"}
    assert granted[("loopphase.dev", "loopphases/status")] == {"get", "patch"}
    # blockOwnerDeletion on owned objects: OwnerReferencesPermissionEnforcement (OpenShift)
    # refuses every owned object unless the operator may update the owner's finalizers.
    assert granted[("loopphase.dev", "loopphases/finalizers")] == {"update"}
    assert granted[("networking.k8s.io", "networkpolicies")] == {"create"}  # <lp>-agents
    # kopf peering: watch + keep-alive patches, and create of the operator's own object
    for peerings in ("clusterkopfpeerings", "kopfpeerings"):
        assert granted[("kopf.dev", peerings)] == {"get", "list", "watch", "patch", "create"}
    writable = {r for (_, r), verbs in granted.items() if verbs & {"create", "patch", "delete"}}
    assert writable == {"loopphases", "loopphases/status", "clusterkopfpeerings", "kopfpeerings",
                        "events", "pods", "persistentvolumeclaims", "configmaps", "secrets",
                        "networkpolicies"}
    assert {r for (_, r), verbs in granted.items() if "update" in verbs} == {"loopphases/finalizers"}


def test_binding_gives_the_role_to_the_deployments_service_account(
    rendered: list[dict[str, Any]],
) -> None:
    binding = one(rendered, "ClusterRoleBinding")
    account = one(rendered, "ServiceAccount")
    pod = one(rendered, "Deployment")["spec"]["template"]["spec"]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io",
                                  "kind": "ClusterRole", "name": "loopphase-operator"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["metadata"]["name"],
                                    "namespace": NAMESPACE}]
    assert pod["serviceAccountName"] == account["metadata"]["name"]


def test_deployment_is_restricted_and_caches_git_on_a_volume(
    rendered: list[dict[str, Any]],
) -> None:
    dep = one(rendered, "Deployment")
    pod = dep["spec"]["template"]["spec"]
    assert len(pod["containers"]) == 1
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert "--git-cache-dir=/cache/git" in container["args"]  # ssh key files live under it
    # Fault 5: replicas 1 waits at most 20 s behind a crashed replica's peering record, and a
    # restarted container keeps its pod's peering identity (never waits behind itself).
    assert dep["spec"]["replicas"] == 1 and "--peering-lifetime=20" in container["args"]
    assert {"name": "POD_ID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}} in \
        container["env"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[mounts["/cache"]] == {"name": mounts["/cache"], "emptyDir": {}}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert one(rendered, "Namespace")["metadata"]["labels"][
        "pod-security.kubernetes.io/enforce"] == "restricted"


def test_network_policy_selects_the_operator_and_admits_only_health_probes(
    rendered: list[dict[str, Any]],
) -> None:
    policy = one(rendered, "NetworkPolicy")["spec"]
    labels = one(rendered, "Deployment")["spec"]["template"]["metadata"]["labels"]
    selector = policy["podSelector"]["matchLabels"]
    assert selector and selector.items() <= labels.items()
    assert policy["policyTypes"] == ["Ingress"]
    assert policy["ingress"] == [{"ports": [{"port": 8080, "protocol": "TCP"},
                                            {"port": 9090, "protocol": "TCP"}]}]


def test_metrics_service_reaches_the_operators_metrics_port(rendered: list[dict[str, Any]]) -> None:
    service = one(rendered, "Service", "loopphase-operator-metrics")["spec"]
    template = one(rendered, "Deployment")["spec"]["template"]
    assert service["selector"].items() <= template["metadata"]["labels"].items()
    ports = {p["name"]: p["containerPort"] for p in template["spec"]["containers"][0]["ports"]}
    assert service["ports"] == [{"name": "metrics", "port": 9090, "targetPort": "metrics",
                                 "protocol": "TCP"}]
    assert ports["metrics"] == 9090  # the operator's --metrics-port default
    assert not any(d["kind"] == "ServiceMonitor" for d in rendered)  # optional, not in base


def test_monitoring_overlay_adds_a_service_monitor_for_the_metrics_service() -> None:
    docs = list(_render("manifests/overlays/monitoring"))
    monitor = one(docs, "ServiceMonitor")
    service = one(docs, "Service", "loopphase-operator-metrics")
    assert monitor["metadata"]["namespace"] == NAMESPACE
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]

"""The kustomize base stays consistent with the code: CRD copy, RBAC, security, examples."""

from __future__ import annotations

from pathlib import Path

import yaml
from loopphase.api.crd import crd_yaml
from loopphase.api.spec import LoopPhaseSpec

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "manifests" / "base"
CRDS = ROOT / "manifests" / "crds"


def docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_manifests_crd_is_the_generated_crd() -> None:
    assert (CRDS / "crd.yaml").read_text() == (ROOT / "crds" / "loopphase.yaml").read_text()
    assert (CRDS / "crd.yaml").read_text() == crd_yaml(), "run `make crd-sync`"
    assert not (BASE / "crd.yaml").exists(), (
        "the CRD copy moved to manifests/crds/crd.yaml (applied and established before the "
        "operator): delete manifests/base/crd.yaml and run `make crd-sync`")


def test_make_deploy_applies_crds_waits_for_them_then_the_operator() -> None:
    """Fault 1: one apply of a CRD and an object of its kind fails on a fresh cluster."""
    text = (ROOT / "Makefile").read_text()
    recipe = text.split("\ndeploy:", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    steps = [line.strip().replace("$(KUBECTL)", "kubectl") for line in recipe]
    assert steps[:3] == ["kubectl apply -k manifests/crds",
                         "kubectl wait --for condition=established --timeout=60s $(CRDS)",
                         "kubectl apply -k manifests/"], steps
    crds = text.split("\nCRDS = ", 1)[1].split("\n", 1)[0].split()
    names = {f"crd/{d['metadata']['name']}" for f in ("crd.yaml", "kopf-peering.yaml")
             for d in docs(CRDS / f)}
    assert set(crds) == names


def test_kustomization_lists_existing_files() -> None:
    for kdir in (BASE, CRDS, ROOT / "manifests" / "examples"):
        kust = yaml.safe_load((kdir / "kustomization.yaml").read_text())
        for res in kust["resources"]:
            assert (kdir / res).exists(), res


def test_rbac_is_least_privilege() -> None:
    role = next(d for d in docs(BASE / "rbac.yaml") if d["kind"] == "ClusterRole")
    granted = {(g, r): set(rule["verbs"]) for rule in role["rules"]
               for g in rule["apiGroups"] for r in rule["resources"]}
    assert not any("exec" in r or "attach" in r or r == "*" for _, r in granted)
    assert not any("*" in verbs for verbs in granted.values())
    assert granted[("", "pods")] == {"get", "list", "watch", "create", "delete"}
    assert "list" not in granted[("", "secrets")]
    assert granted[("loopphase.dev", "loopphases/status")] >= {"patch"}


def test_operator_deployment_has_liveness_and_restricted_security() -> None:
    dep = docs(BASE / "deployment.yaml")[0]
    pod = dep["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert "--liveness=http://0.0.0.0:8080/healthz" in container["args"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_examples_validate() -> None:
    for name in ("sim-two-phase.yaml", "claude-two-phase.yaml"):
        lp = docs(ROOT / "manifests" / "examples" / name)[0]
        assert lp["kind"] == "LoopPhase"
        LoopPhaseSpec.model_validate(lp["spec"])


def test_agent_network_policy_admits_only_the_operator_on_the_shim_port() -> None:
    pol = docs(ROOT / "manifests" / "examples" / "networkpolicy-agents.yaml")[0]
    rule = pol["spec"]["ingress"]
    assert len(rule) == 1 and rule[0]["ports"] == [{"port": 8790, "protocol": "TCP"}]
    assert rule[0]["from"][0]["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/name": "loopphase-operator"}

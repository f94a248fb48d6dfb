"""End-to-end on a real cluster (kind): `make kind-up images kind-load deploy`, then `make e2e`.

Skipped, with the reason, when kubectl is missing or no cluster answers within 10 s.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.kind


def kubectl(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["kubectl", *args], capture_output=True, text=True, timeout=timeout,
                          check=False)


def _cluster_reason() -> str | None:
    if shutil.which("kubectl") is None:
        return "kubectl is not installed"
    try:
        probe = kubectl("cluster-info", "--request-timeout=10s", timeout=15)
    except subprocess.TimeoutExpired:
        return "no Kubernetes cluster answered within 15 s (make kind-up)"
    if probe.returncode != 0:
        return f"no Kubernetes cluster reachable (make kind-up): {probe.stderr.strip()[:200]}"
    return None


@pytest.fixture(scope="module", autouse=True)
def cluster() -> None:
    reason = _cluster_reason()
    if reason:
        pytest.skip(reason)
    ready = kubectl("-n", "loopphase-system", "rollout", "status",
                    "deployment/loopphase-operator", "--timeout=120s", timeout=130)
    if ready.returncode != 0:
        pytest.skip(f"operator not deployed (make images kind-load deploy): {ready.stderr.strip()[:200]}")


def wait_for(check, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(2)  # polling a remote cluster's state, bounded by the deadline
    raise AssertionError(f"timed out waiting for {what}")


def test_invalid_spec_is_reported_without_pods(tmp_path: Path) -> None:
    name = "e2e-invalid"
    manifest = {
        "apiVersion": "loopphase.dev/v1alpha1", "kind": "LoopPhase",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"repo": {"url": "https://example.invalid/r.git"},
                 "phases": [{"id": "p1", "plan": "P.md", "statusFile": "S.md"}],
                 "timing": {"signalInterval": "3h"}},  # beyond the 1h maximum: invalid
    }
    path = tmp_path / "lp.json"
    path.write_text(json.dumps(manifest))
    kubectl("delete", "loopphase", name, "--ignore-not-found", "--wait=true")
    assert kubectl("apply", "-f", str(path)).returncode == 0
    try:
        def phase() -> str:
            out = kubectl("get", "loopphase", name, "-o", "jsonpath={.status.phase}")
            return out.stdout.strip() == "Invalid" and out.stdout
        wait_for(phase, 60, "status.phase Invalid")
        pods = kubectl("get", "pods", "-l", f"loopphase.dev/name={name}", "-o", "name")
        assert pods.stdout.strip() == ""
    finally:
        kubectl("delete", "loopphase", name, "--ignore-not-found", "--wait=true", timeout=120)


def test_sim_example_starts_one_pod_per_role() -> None:
    example = ROOT / "manifests" / "examples" / "sim-two-phase.yaml"
    assert kubectl("apply", "-n", "default", "-f", str(example)).returncode == 0
    try:
        def pods() -> list[str]:
            out = kubectl("get", "pods", "-n", "default", "-l", "loopphase.dev/name=demo",
                          "-o", "jsonpath={.items[*].metadata.name}")
            names = out.stdout.split()
            return names if {"demo-builder", "demo-adversary"} <= set(names) else []
        names = wait_for(pods, 120, "demo-builder and demo-adversary pods")
        assert sorted(names) == ["demo-adversary", "demo-builder"]  # never two per role
    finally:
        kubectl("delete", "-n", "default", "-f", str(example), "--wait=true", timeout=180)

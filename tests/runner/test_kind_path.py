"""Fault: docs/kubernetes.md's kind path broke at `make deploy` on a fresh clone (no .venv),
listed no prerequisites, and gave no git server or plans for the example."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "kubernetes.md").read_text()


def fresh_clone(tmp_path: Path) -> Path:
    """A clone of the committed tree (what a new user gets): no .venv, nothing generated."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True, timeout=120, capture_output=True)
    assert not (clone / ".venv").exists()
    return clone


def fake_kubectl(tmp_path: Path) -> tuple[Path, Path]:
    record = tmp_path / "kubectl.calls"
    script = tmp_path / "kubectl"
    script.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$*\" >> {record}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script, record


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_deploy_and_example_work_on_a_fresh_clone_without_a_venv(tmp_path: Path) -> None:
    clone = fresh_clone(tmp_path)
    kubectl, record = fake_kubectl(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env["PATH"] = "/usr/bin:/bin"
    for target in ("deploy", "example"):
        done = subprocess.run(["make", target, f"KUBECTL={kubectl}"], cwd=clone, env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
    calls = record.read_text().splitlines()
    # CRDs first and established, then the operator (issue 14, fault 1)
    assert calls[:3] == [
        "apply -k manifests/crds",
        "wait --for condition=established --timeout=60s crd/loopphases.loopphase.dev "
        "crd/clusterkopfpeerings.kopf.dev crd/kopfpeerings.kopf.dev",
        "apply -k manifests/"], calls
    assert "apply -k manifests/examples/" in calls
    assert any(c.startswith("rollout status deployment/git-server") for c in calls)
    assert not (clone / ".venv").exists(), "deploy/example must not need Python"


def test_the_doc_lists_prerequisites_and_names_only_real_targets_and_files() -> None:
    for word in ("docker", "podman", "kind", "kubectl"):
        assert f"**{word}**" in DOC, word
    makefile = (ROOT / "Makefile").read_text()
    for target in set(re.findall(r"^make ([a-z0-9-]+)", DOC, re.M)):
        assert re.search(rf"^{re.escape(target)}:", makefile, re.M), f"make {target} is not a target"
    for path in set(re.findall(r"`(manifests/examples/[\w.-]+\.yaml)`", DOC)):
        assert (ROOT / path).exists(), path
    for name in set(re.findall(r"`([\w-]+\.yaml)`", DOC)):
        if name.startswith(("git-server", "sim-two")):
            assert (ROOT / "manifests" / "examples" / name).exists(), name


def test_the_example_points_at_the_git_server_the_examples_provide() -> None:
    examples = ROOT / "manifests" / "examples"
    kust = yaml.safe_load((examples / "kustomization.yaml").read_text())
    assert {"git-server.yaml", "sim-two-phase.yaml"} <= set(kust["resources"])
    docs = list(yaml.safe_load_all((examples / "git-server.yaml").read_text()))
    service = next(d for d in docs if d["kind"] == "Service")
    port = service["spec"]["ports"][0]["port"]
    url = yaml.safe_load((examples / "sim-two-phase.yaml").read_text())["spec"]["repo"]["url"]
    assert url == f"git://{service['metadata']['name']}.default.svc/demo.git" and port == 9418
    seed = next(d for d in docs if d["kind"] == "ConfigMap")["data"]["seed.sh"]
    spec = yaml.safe_load((examples / "sim-two-phase.yaml").read_text())["spec"]
    for phase in spec["phases"]:
        assert phase["plan"].replace("1", "$n").replace("2", "$n") in seed or phase["plan"] in seed


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_the_examples_render_with_kustomize() -> None:
    done = subprocess.run(["kubectl", "kustomize", str(ROOT / "manifests" / "examples")], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    kinds = sorted(d["kind"] for d in yaml.safe_load_all(done.stdout) if d)
    assert kinds == ["ConfigMap", "Deployment", "LoopPhase", "NetworkPolicy", "Service"]

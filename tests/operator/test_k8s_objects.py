"""The pure Pod/PVC/ConfigMap/Secret builders: shape, security, no shell strings."""

from __future__ import annotations

import subprocess

import pytest
from loopphase.api.spec import LoopPhaseSpec
from loopphase.runtime import k8s_objects as ko

OWNER = ko.Owner(name="demo", namespace="team-a", uid="uid-1234")
SETTINGS = ko.PodSettings(agent_image="agent:test", shim_port=8790)


def make_spec(**extra: object) -> LoopPhaseSpec:
    raw: dict[str, object] = {
        "repo": {"url": "https://git.example/repo.git", "branch": "main"},
        "phases": [
            {"id": "p1", "plan": "PLAN-1.md", "statusFile": "STATUS-1.md"},
            {"id": "p2", "plan": "PLAN-2.md", "statusFile": "STATUS-2.md"},
        ],
        "agents": {
            "builder": {
                "backend": "claude",
                "model": "opus",
                "env": [{"name": "ANTHROPIC_API_KEY", "secretKeyRef": {"name": "keys", "key": "a"}}],
                "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": 2}},
            }
        },
    }
    raw.update(extra)
    return LoopPhaseSpec.model_validate(raw)


def launch(role: str = "builder", **kw: object) -> ko.PodLaunch:
    values: dict[str, object] = dict(
        role=role, phase_index=1, phase_id="p2", mode="cold",
        continuation="Continue; $(rm -rf /) `x`", model="opus",
    )
    values.update(kw)
    return ko.PodLaunch(**values)  # type: ignore[arg-type]


def test_pod_identity_labels_annotations_owner() -> None:
    pod = ko.agent_pod(OWNER, make_spec(), launch(), SETTINGS)
    meta = pod["metadata"]
    assert meta["name"] == "demo-builder"
    assert meta["namespace"] == "team-a"
    assert meta["labels"] == {
        "app.kubernetes.io/name": "loopphase-agent",
        "app.kubernetes.io/instance": "demo",
        "app.kubernetes.io/component": "builder",
        "app.kubernetes.io/managed-by": "loopphase",
        "loopphase.dev/name": "demo",
        "loopphase.dev/role": "builder",
        "loopphase.dev/phase": "p2",
    }
    assert meta["annotations"]["loopphase.dev/phase-index"] == "1"
    assert meta["annotations"]["loopphase.dev/spawn-mode"] == "cold"
    assert meta["ownerReferences"] == [{
        "apiVersion": "loopphase.dev/v1alpha1", "kind": "LoopPhase", "name": "demo",
        "uid": "uid-1234", "controller": True, "blockOwnerDeletion": True,
    }]


def test_pod_security_is_restricted() -> None:
    spec = ko.agent_pod(OWNER, make_spec(), launch(), SETTINGS)["spec"]
    assert spec["automountServiceAccountToken"] is False
    assert spec["restartPolicy"] == "Never"
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == 1000
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in spec["containers"] + spec["initContainers"]:
        sc = container["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert sc["runAsNonRoot"] is True
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}


def test_container_runs_shim_argv_with_probes_and_resources() -> None:
    container = ko.agent_pod(OWNER, make_spec(), launch(), SETTINGS)["spec"]["containers"][0]
    assert container["image"] == "agent:test"
    assert container["command"] == ["loopphase"]
    args = container["args"]
    assert args[0] == "shim"
    pairs = dict(zip(args[1::2], args[2::2], strict=True))
    assert pairs == {
        "--role": "builder", "--backend": "claude", "--workdir": "/work/repo",
        "--kickoff-file": "/etc/loopphase/prompts/kickoff-builder-p2.md",
        "--continuation-text": "Continue; $(rm -rf /) `x`",  # one argv element, never a shell
        "--mode": "cold", "--phase-index": "1", "--phase-id": "p2", "--host": "0.0.0.0",
        "--port": "8790",
        "--state-dir": "/work/.loopphase/builder",
        "--model": "opus",
    }
    assert container["readinessProbe"]["httpGet"] == {"path": "/v1/health", "port": 8790}
    assert set(container["livenessProbe"]) - {"initialDelaySeconds", "periodSeconds",
                                              "failureThreshold"} == {"tcpSocket"}
    assert container["resources"] == {
        "requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "2"},
    }
    env = {e["name"]: e for e in container["env"]}
    assert env["ANTHROPIC_API_KEY"]["valueFrom"] == {"secretKeyRef": {"name": "keys", "key": "a"}}
    assert "value" not in env["ANTHROPIC_API_KEY"]


def test_volumes_pvc_prompts_token_and_optional_git_credentials() -> None:
    pod = ko.agent_pod(OWNER, make_spec(), launch(), SETTINGS)
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["work"]["persistentVolumeClaim"] == {"claimName": "demo-builder-work"}
    assert volumes["prompts"]["configMap"]["name"] == "demo-prompts"
    assert "shim-token" not in volumes  # the token comes by env and leaves it (shim/server.py)
    env = {e["name"]: e for e in pod["spec"]["containers"][0]["env"]}
    assert env["LOOPPHASE_SHIM_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "demo-builder-shim-token", "key": "token"}
    assert "git-credentials" not in volumes

    spec = make_spec(repo={"url": "git@host:r.git", "credentialsSecret": "git-creds"})
    pod = ko.agent_pod(OWNER, spec, launch(), SETTINGS)
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["git-credentials"]["secret"]["secretName"] == "git-creds"
    for container in pod["spec"]["containers"] + pod["spec"]["initContainers"]:
        assert "/etc/loopphase/git" in [m["mountPath"] for m in container["volumeMounts"]]


def test_scenario_flag_only_when_present_and_no_model_flag_without_model() -> None:
    args = ko.agent_pod(OWNER, make_spec(), launch(model=None), SETTINGS, has_scenario=True)[
        "spec"]["containers"][0]["args"]
    assert "--model" not in args
    assert args[args.index("--scenario") + 1] == "/etc/loopphase/prompts/scenario-builder.yaml"


def test_init_container_passes_spec_values_as_positional_args() -> None:
    spec = make_spec(repo={"url": "https://h/r.git", "branch": "feat/x"})
    init = ko.agent_pod(OWNER, spec, launch(), SETTINGS)["spec"]["initContainers"][0]
    assert init["command"][:2] == ["/bin/sh", "-c"]
    assert init["command"][2] == ko.CLONE_SCRIPT  # constant: no spec value inside
    assert init["args"] == ["https://h/r.git", "feat/x", "builder"]


def test_clone_script_clones_once_then_keeps_the_clone(tmp_path) -> None:
    """Run the constant script for real against a local bare repo (paths rewritten)."""
    origin = tmp_path / "origin.git"
    seed = tmp_path / "seed"
    run = lambda *a, cwd=None: subprocess.run(a, cwd=cwd, check=True, capture_output=True, timeout=30)  # noqa: E731
    run("git", "init", "-q", "--bare", "-b", "main", str(origin))
    run("git", "init", "-q", "-b", "main", str(seed))
    run("git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty",
        "-m", "init", cwd=seed)
    run("git", "push", "-q", str(origin), "main", cwd=seed)
    script = ko.CLONE_SCRIPT.replace("/work", str(tmp_path / "work")).replace(
        "/etc/loopphase", str(tmp_path / "etc"))
    argv = ["/bin/sh", "-c", script, "clone", str(origin), "main", "builder"]
    first = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
    assert "cloned into" in first.stdout
    assert (tmp_path / "work" / "repo" / ".git").is_dir()
    second = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
    assert "already holds a clone" in second.stdout


def test_pvc_secret_configmap() -> None:
    pvc = ko.work_pvc(OWNER, "adversary", ko.PodSettings(storage_size="5Gi", storage_class="fast"))
    assert pvc["metadata"]["name"] == "demo-adversary-work"
    assert pvc["spec"] == {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "5Gi"}},
        "storageClassName": "fast",
    }
    assert pvc["metadata"]["ownerReferences"][0]["uid"] == "uid-1234"
    secret = ko.token_secret(OWNER, "adversary", "s3cret")
    assert secret["metadata"]["name"] == "demo-adversary-shim-token"
    assert "stringData" not in secret
    assert ko.read_token(secret) == "s3cret"
    cm = ko.prompts_configmap(OWNER, {ko.kickoff_key("builder", "p1"): "hello"})
    assert cm["metadata"]["name"] == "demo-prompts"
    assert cm["data"] == {"kickoff-builder-p1.md": "hello"}


@pytest.mark.parametrize("name", ["a" * 63, "a" * 64, "x" * 200, "ok-name"])
def test_label_values_are_valid(name: str) -> None:
    value = ko.label_value(name)
    assert len(value) <= 63
    assert ko._LABEL_VALUE_RE.match(value)
    assert ko.label_value(name) == value  # stable
    if len(name) <= 63:
        assert value == name


def test_adversary_inherits_builder_settings() -> None:
    pod = ko.agent_pod(OWNER, make_spec(), launch(role="adversary"), SETTINGS)
    assert pod["metadata"]["name"] == "demo-adversary"
    env = {e["name"] for e in pod["spec"]["containers"][0]["env"]}
    assert "ANTHROPIC_API_KEY" in env


def test_opencode_gets_server_and_bootstrap_pointing_at_the_kickoff_file() -> None:
    spec = make_spec(agents={"builder": {"backend": "opencode",
                                         "opencodeServer": "http://opencode:4096"}})
    args = ko.agent_pod(OWNER, spec, launch(), SETTINGS)["spec"]["containers"][0]["args"]
    assert args[args.index("--opencode-server") + 1] == "http://opencode:4096"
    assert "/etc/loopphase/prompts/kickoff-builder-p2.md" in args[args.index("--bootstrap-text") + 1]
    claude = ko.agent_pod(OWNER, make_spec(), launch(), SETTINGS)["spec"]["containers"][0]["args"]
    assert "--opencode-server" not in claude and "--bootstrap-text" not in claude


def test_pod_env_carries_phase_facts_like_the_local_runtime() -> None:
    spec = make_spec()
    plan = launch()
    container = ko.agent_pod(OWNER, spec, plan, SETTINGS)["spec"]["containers"][0]
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["LOOPPHASE_PHASE"] == plan.phase_id
    assert env["LOOPPHASE_STATUS_FILE"] == spec.phases[plan.phase_index].status_file
    assert env["LOOPPHASE_STATE_DIR"] == spec.repo.state_dir


def test_agents_network_policy_admits_only_the_operator_on_the_shim_port() -> None:
    settings = ko.PodSettings(operator_namespace="ops", shim_port=9000)
    policy = ko.agents_network_policy(OWNER, settings)
    assert policy["metadata"]["name"] == "demo-agents"
    assert policy["metadata"]["ownerReferences"][0]["uid"] == "uid-1234"
    spec = policy["spec"]
    assert spec["podSelector"] == {"matchLabels": {"loopphase.dev/name": "demo"}}
    assert spec["policyTypes"] == ["Ingress"]
    (rule,) = spec["ingress"]
    assert rule["ports"] == [{"port": 9000, "protocol": "TCP"}]
    assert rule["from"] == [{
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ops"}},
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "loopphase-operator"}},
    }]
    pod = ko.agent_pod(OWNER, make_spec(), launch(), settings)
    assert pod["metadata"]["labels"]["loopphase.dev/name"] == "demo"  # selected by the policy

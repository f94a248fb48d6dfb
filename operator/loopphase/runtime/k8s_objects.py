"""Pure builders of the Kubernetes objects one LoopPhase owns (no I/O, no clock).

Per LoopPhase: a Secret ``<lp>-shim-token`` (the shim bearer token) and a ConfigMap
``<lp>-prompts`` (kickoff prompts and sim scenarios, one key per role/phase). Per role: a PVC
``<lp>-<role>-work`` (clone + agent home + shim state; survives pod restarts and phases) and a
Pod ``<lp>-<role>`` running ``loopphase shim``. Everything carries an ownerReference to the
LoopPhase (controller, blockOwnerDeletion), so the garbage collector removes it with the owner.

Nothing here builds a shell string from spec fields: the agent container gets an argv, and the
init container runs a constant script that receives spec values as positional parameters.

Git credentials (``spec.repo.credentialsSecret``) are mounted read-only at ``GIT_CREDS_MOUNT``.
For an ssh URL both containers get ``GIT_SSH_COMMAND`` naming the mounted ``ssh-privatekey``
(one identity, never prompting) and an ssh config that the init container writes from
constants: strict host-key checking against the Secret's ``known_hosts`` when it has one,
trust-on-first-use (``accept-new``) into the agent's ``~/.ssh/known_hosts`` otherwise. For
https the init container sets a credential helper reading ``username``/``password``.
"""

from __future__ import annotations

import base64
import hashlib
import re
import shlex
from dataclasses import dataclass
from typing import Any

from loopphase.api.base import API_GROUP, API_VERSION, KIND
from loopphase.api.spec import AgentSpec, LoopPhaseSpec, Role, render_text
from loopphase.git.ssh import KNOWN_HOSTS, SSH_KEY, is_ssh_url, ssh_argv, ssh_command

ANN_PHASE_INDEX = "loopphase.dev/phase-index"
ANN_SPAWN_MODE = "loopphase.dev/spawn-mode"
LABEL_NAME = "loopphase.dev/name"
LABEL_ROLE = "loopphase.dev/role"
LABEL_PHASE = "loopphase.dev/phase"
TOKEN_KEY = "token"

WORK_MOUNT = "/work"
REPO_DIR = f"{WORK_MOUNT}/repo"
HOME_DIR = f"{WORK_MOUNT}/home"
STATE_ROOT = f"{WORK_MOUNT}/.loopphase"  # the shim's --state-dir is STATE_ROOT/<role>
AGENT_CONTAINER = "agent"  # the agent pod's container running `loopphase shim`
PROMPTS_MOUNT = "/etc/loopphase/prompts"
SHIM_TOKEN_ENV = "LOOPPHASE_SHIM_TOKEN"
GIT_CREDS_MOUNT = "/etc/loopphase/git"
# Read-only to its owner (root) in the spec; the kubelet adds group read for the pod's fsGroup
# (AGENT_UID), so the agent reads it as 0440 root:1000, and ssh accepts it (ssh only refuses
# a group-readable key that the user itself owns).
GIT_CREDS_MODE = 0o400
GIT_SSH_KEY_FILE = f"{GIT_CREDS_MOUNT}/{SSH_KEY}"
GIT_KNOWN_HOSTS_FILE = f"{GIT_CREDS_MOUNT}/{KNOWN_HOSTS}"
SSH_DIR = f"{HOME_DIR}/.ssh"
SSH_CONFIG_FILE = f"{SSH_DIR}/loopphase_ssh_config"  # host-key policy, written by init
SSH_ACCEPTED_HOSTS = f"{SSH_DIR}/known_hosts"  # trust-on-first-use store (on the PVC)
AGENT_UID = 1000


def pod_ssh_config(pinned: bool) -> str:
    """The ssh config the init container writes: the host-key policy (the rest is argv)."""
    if pinned:
        return f"StrictHostKeyChecking yes\nUserKnownHostsFile {GIT_KNOWN_HOSTS_FILE}\n"
    return f"StrictHostKeyChecking accept-new\nUserKnownHostsFile {SSH_ACCEPTED_HOSTS}\n"


def pod_git_ssh_command() -> str:
    """``GIT_SSH_COMMAND`` in the agent pods: operator constants only, no spec value."""
    return ssh_command(ssh_argv(GIT_SSH_KEY_FILE, config_file=SSH_CONFIG_FILE))


def _printf_lines(text: str) -> str:
    return "printf '%s\\n' " + " ".join(shlex.quote(line) for line in text.splitlines())


# The init container's script is a constant: the repo URL, branch and role arrive as "$1" "$2"
# "$3" (argv), so no spec value is ever parsed by a shell. The ssh part only tests which files
# the credentials Secret has; it no longer copies the key onto the volume (and removes a copy
# an older operator left there).
CLONE_SCRIPT = r"""set -eu
url="$1"; branch="$2"; role="$3"
dest=/work/repo
mkdir -p /work/home /work/.loopphase
export HOME=/work/home
git config --global user.name "loopphase-$role"
git config --global user.email "loopphase-$role@loopphase.invalid"
rm -f /work/home/.ssh/id_loopphase
git config --global --unset-all core.sshCommand || true
if [ -d /etc/loopphase/git ]; then
  mkdir -p {ssh_dir}
  chmod 700 {ssh_dir}
  if [ -s {known_hosts} ]; then
    {pinned} > {config}
  else
    {tofu} > {config}
    if [ -f {key} ]; then
      echo "loopphase: warning: the git credentials Secret has no known_hosts; ssh trusts the host key on first use" >&2
    fi
  fi
  chmod 600 {config}
fi
if [ -f /etc/loopphase/git/password ]; then""".format(
    ssh_dir=shlex.quote(SSH_DIR),
    known_hosts=shlex.quote(GIT_KNOWN_HOSTS_FILE),
    key=shlex.quote(GIT_SSH_KEY_FILE),
    config=shlex.quote(SSH_CONFIG_FILE),
    pinned=_printf_lines(pod_ssh_config(True)),
    tofu=_printf_lines(pod_ssh_config(False)),
) + r"""
  git config --global credential.helper \
    '!f() { test "$1" = get || exit 0; echo "username=$(cat /etc/loopphase/git/username 2>/dev/null || echo git)"; echo "password=$(cat /etc/loopphase/git/password)"; }; f'
fi
if [ -d "$dest/.git" ]; then
  echo "loopphase: $dest already holds a clone; keeping it"
  exit 0
fi
rm -rf "$dest.partial"
git clone --branch "$branch" -- "$url" "$dest.partial"
mv "$dest.partial" "$dest"
echo "loopphase: cloned into $dest"
"""


@dataclass(frozen=True)
class Owner:
    """The LoopPhase that owns the objects (its identity, not its spec)."""

    name: str
    namespace: str
    uid: str


@dataclass(frozen=True)
class PodSettings:
    """Operator-level knobs (flags / env of the operator Deployment), not spec fields."""

    agent_image: str = "loopphase-agent:dev"
    image_pull_policy: str = "IfNotPresent"
    shim_port: int = 8790
    storage_size: str = "10Gi"
    storage_class: str | None = None
    termination_grace_seconds: int = 30
    # Where the operator runs: the agents' NetworkPolicy admits the shim port from its pods.
    operator_namespace: str = "loopphase-system"
    operator_pod_labels: tuple[tuple[str, str], ...] = (
        ("app.kubernetes.io/name", "loopphase-operator"),
    )


# -- names -----------------------------------------------------------------------------------


def pod_name(lp: str, role: Role) -> str:
    return f"{lp}-{role}"


def pvc_name(lp: str, role: Role) -> str:
    return f"{lp}-{role}-work"


def network_policy_name(lp: str) -> str:
    return f"{lp}-agents"


def token_secret_name(lp: str, role: Role) -> str:
    """One token per role: a builder that reads its own token cannot drive the adversary."""
    return f"{lp}-{role}-shim-token"


def prompts_configmap_name(lp: str) -> str:
    return f"{lp}-prompts"


def kickoff_key(role: Role, phase_id: str) -> str:
    return f"kickoff-{role}-{phase_id}.md"


def scenario_key(role: Role) -> str:
    return f"scenario-{role}.yaml"


_LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def label_value(value: str) -> str:
    """A valid label value (<= 63 chars); long names keep a prefix and a stable hash suffix."""
    if len(value) <= 63 and _LABEL_VALUE_RE.match(value):
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()[:10]
    head = re.sub(r"[^-A-Za-z0-9_.]", "-", value)[:52].rstrip("-_.")
    return f"{head}-{digest}" if head else digest


# -- common metadata -------------------------------------------------------------------------


def owner_reference(owner: Owner) -> dict[str, Any]:
    return {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": KIND,
        "name": owner.name,
        "uid": owner.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def common_labels(owner: Owner, role: Role | None = None) -> dict[str, str]:
    labels = {
        "app.kubernetes.io/name": "loopphase-agent",
        "app.kubernetes.io/instance": label_value(owner.name),
        "app.kubernetes.io/managed-by": "loopphase",
        LABEL_NAME: label_value(owner.name),
    }
    if role is not None:
        labels["app.kubernetes.io/component"] = role
        labels[LABEL_ROLE] = role
    return labels


def _metadata(owner: Owner, name: str, role: Role | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": owner.namespace,
        "labels": common_labels(owner, role),
        "ownerReferences": [owner_reference(owner)],
    }


# -- objects ---------------------------------------------------------------------------------


def token_secret(owner: Owner, role: Role, token: str) -> dict[str, Any]:
    """The bearer token of one role's shim. ``data`` (not ``stringData``) so a read returns
    what was written."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": _metadata(owner, token_secret_name(owner.name, role), role),
        "data": {TOKEN_KEY: base64.b64encode(token.encode()).decode()},
    }


def agents_network_policy(owner: Owner, settings: PodSettings) -> dict[str, Any]:
    """Ingress to this LoopPhase's agent pods: the shim port, from the operator's pods only.

    Agents reach nothing of each other (a builder cannot call the adversary's shim even with a
    token). Egress is left to the cluster's policy (see manifests/examples for one that blocks
    the cloud metadata endpoint). Needs a CNI that enforces NetworkPolicy.
    """
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(owner, network_policy_name(owner.name)),
        "spec": {
            "podSelector": {"matchLabels": {LABEL_NAME: label_value(owner.name)}},
            "policyTypes": ["Ingress"],
            "ingress": [{
                "from": [{
                    "namespaceSelector": {"matchLabels": {
                        "kubernetes.io/metadata.name": settings.operator_namespace}},
                    "podSelector": {"matchLabels": dict(settings.operator_pod_labels)},
                }],
                "ports": [{"port": settings.shim_port, "protocol": "TCP"}],
            }],
        },
    }


def read_token(secret: dict[str, Any]) -> str | None:
    raw = (secret.get("data") or {}).get(TOKEN_KEY)
    return base64.b64decode(raw).decode() if raw else None


def prompts_configmap(owner: Owner, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(owner, prompts_configmap_name(owner.name)),
        "data": dict(data),
    }


def work_pvc(owner: Owner, role: Role, settings: PodSettings) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": settings.storage_size}},
    }
    if settings.storage_class is not None:
        spec["storageClassName"] = settings.storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _metadata(owner, pvc_name(owner.name, role), role),
        "spec": spec,
    }


@dataclass(frozen=True)
class PodLaunch:
    """What one agent pod is started for (from a LaunchPlan, minus the prompt texts)."""

    role: Role
    phase_index: int
    phase_id: str
    mode: str
    continuation: str
    model: str | None


def shim_args(
    launch: PodLaunch,
    agent: AgentSpec,
    settings: PodSettings,
    has_scenario: bool,
    bootstrap: str = "",
) -> list[str]:
    """The ``loopphase shim`` argv (after the ``loopphase`` command)."""
    args = [
        "shim",
        "--role", launch.role,
        "--backend", agent.backend,
        "--workdir", REPO_DIR,
        "--kickoff-file", f"{PROMPTS_MOUNT}/{kickoff_key(launch.role, launch.phase_id)}",
        "--continuation-text", launch.continuation,
        "--mode", launch.mode,
        "--phase-index", str(launch.phase_index),
        "--phase-id", launch.phase_id,
        "--host", "0.0.0.0",  # the pod IP; the NetworkPolicy admits only the operator
        "--port", str(settings.shim_port),
        "--state-dir", f"{STATE_ROOT}/{launch.role}",
    ]
    if launch.model:
        args += ["--model", launch.model]
    if has_scenario:
        args += ["--scenario", f"{PROMPTS_MOUNT}/{scenario_key(launch.role)}"]
    if agent.backend == "opencode" and agent.opencode_server:
        args += ["--opencode-server", agent.opencode_server]
        if bootstrap:
            args += ["--bootstrap-text", bootstrap]
    return args


def _resources(agent: AgentSpec) -> dict[str, Any]:
    if agent.resources is None:
        return {}
    out: dict[str, Any] = {}
    if agent.resources.requests:
        out["requests"] = {k: str(v) for k, v in agent.resources.requests.items()}
    if agent.resources.limits:
        out["limits"] = {k: str(v) for k, v in agent.resources.limits.items()}
    return out


_CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "runAsUser": AGENT_UID,
    "runAsGroup": AGENT_UID,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def agent_pod(
    owner: Owner,
    spec: LoopPhaseSpec,
    launch: PodLaunch,
    settings: PodSettings,
    has_scenario: bool = False,
) -> dict[str, Any]:
    """The agent Pod for one role and phase. restartPolicy Never: a dead shim is the
    operator's decision (recreate warm / cold), never a blind kubelet replay of a cold start."""
    role = launch.role
    agent = spec.agent(role)
    image = agent.image or settings.agent_image
    meta = _metadata(owner, pod_name(owner.name, role), role)
    meta["labels"][LABEL_PHASE] = label_value(launch.phase_id)
    meta["annotations"] = {
        ANN_PHASE_INDEX: str(launch.phase_index),
        ANN_SPAWN_MODE: launch.mode,
    }
    env: list[dict[str, Any]] = [
        # The shim takes its token from the environment, removes it before it starts the agent
        # and makes itself non-dumpable: the agent (same uid) reads neither a file nor
        # /proc/<shim>/environ. No token volume is mounted.
        {
            "name": SHIM_TOKEN_ENV,
            "valueFrom": {
                "secretKeyRef": {"name": token_secret_name(owner.name, role), "key": TOKEN_KEY}
            },
        },
        {"name": "HOME", "value": HOME_DIR},
        {"name": "LOOPPHASE_ROLE", "value": role},
        # The same facts the local runtime passes, so the sim backend behaves alike in pods.
        {"name": "LOOPPHASE_PHASE", "value": launch.phase_id},
        {"name": "LOOPPHASE_STATUS_FILE", "value": spec.phases[launch.phase_index].status_file},
        {"name": "LOOPPHASE_STATE_DIR", "value": spec.repo.state_dir},
    ]
    env += [
        {
            "name": item.name,
            "valueFrom": {
                "secretKeyRef": {"name": item.secret_key_ref.name, "key": item.secret_key_ref.key}
            },
        }
        for item in agent.env
    ]
    mounts = [
        {"name": "work", "mountPath": WORK_MOUNT},
        {"name": "prompts", "mountPath": PROMPTS_MOUNT, "readOnly": True},
    ]
    volumes: list[dict[str, Any]] = [
        {"name": "work", "persistentVolumeClaim": {"claimName": pvc_name(owner.name, role)}},
        {"name": "prompts", "configMap": {"name": prompts_configmap_name(owner.name)}},
    ]
    init_mounts = [{"name": "work", "mountPath": WORK_MOUNT}]
    init_env: list[dict[str, Any]] = [{"name": "HOME", "value": HOME_DIR}]
    if spec.repo.credentials_secret:
        creds = {"name": "git-credentials", "mountPath": GIT_CREDS_MOUNT, "readOnly": True}
        mounts.append(creds)
        init_mounts.append(creds)
        volumes.append(
            {
                "name": "git-credentials",
                "secret": {
                    "secretName": spec.repo.credentials_secret,
                    "defaultMode": GIT_CREDS_MODE,
                },
            }
        )
        if is_ssh_url(spec.repo.url):
            ssh_env = {"name": "GIT_SSH_COMMAND", "value": pod_git_ssh_command()}
            env.append(ssh_env)
            init_env.append(dict(ssh_env))
    port = settings.shim_port
    container: dict[str, Any] = {
        "name": AGENT_CONTAINER,
        "image": image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": ["loopphase"],
        "args": shim_args(
            launch, agent, settings, has_scenario,
            render_text(
                spec.texts.bootstrap, role=role, phase=launch.phase_id, inbox="",
                kickoff=f"{PROMPTS_MOUNT}/{kickoff_key(role, launch.phase_id)}",
            ),
        ),
        "workingDir": WORK_MOUNT,
        "env": env,
        "ports": [{"name": "shim", "containerPort": port, "protocol": "TCP"}],
        "readinessProbe": {
            "httpGet": {"path": "/v1/health", "port": port},
            "periodSeconds": 5,
            "failureThreshold": 3,
        },
        # Liveness is the shim process only (a TCP accept): judging activity is the
        # operator's job; an activity probe would kill usage-limited agents.
        "livenessProbe": {
            "tcpSocket": {"port": port},
            "initialDelaySeconds": 15,
            "periodSeconds": 20,
            "failureThreshold": 6,
        },
        "securityContext": dict(_CONTAINER_SECURITY),
        "volumeMounts": mounts,
    }
    resources = _resources(agent)
    if resources:
        container["resources"] = resources
    init: dict[str, Any] = {
        "name": "clone",
        "image": image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": ["/bin/sh", "-c", CLONE_SCRIPT, "loopphase-clone"],
        "args": [spec.repo.url, spec.repo.branch, role],
        "env": init_env,
        "securityContext": dict(_CONTAINER_SECURITY),
        "volumeMounts": init_mounts,
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "terminationGracePeriodSeconds": settings.termination_grace_seconds,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": AGENT_UID,
                "runAsGroup": AGENT_UID,
                "fsGroup": AGENT_UID,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "initContainers": [init],
            "containers": [container],
            "volumes": volumes,
        },
    }

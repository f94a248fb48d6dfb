"""Run one container of a Kubernetes Pod spec with docker or podman, as the kubelet would.

``run_argv`` turns a container (plus its pod's ``securityContext`` and ``volumes``) into a
``<engine> run`` argv: the user and groups, dropped capabilities, no privilege escalation, a
read-only root filesystem exactly when ``readOnlyRootFilesystem`` is set (podman's extra tmpfs
on /tmp, /run and /var/tmp is turned off: the kubelet adds none), the command and args, the
working directory, the environment (``secretKeyRef`` / ``fieldRef`` resolved from what the test
passes), and the volume mounts (a PVC as a host directory, an ``emptyDir`` as a tmpfs, a
ConfigMap or Secret as a host directory of files, read-only when the mount says so).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


class PodSpecError(ValueError):
    """Something in the pod spec this emulation does not cover (so the test cannot claim it)."""


def engine_flags(engine: str) -> list[str]:
    """Flags every ``run`` gets on this machine: podman through runc (crun cannot run
    containers on some cgroup v1 hosts) with explicit open-file and process limits."""
    if Path(engine).name != "podman":
        return []
    flags = ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=4096:4096"]
    runtime = os.environ.get("PODMAN_RUNTIME", "runc")
    return (["--runtime", runtime] if runtime else []) + flags


def _env_value(item: dict[str, Any], secrets: dict[tuple[str, str], str],
               fields: dict[str, str]) -> str:
    if "value" in item:
        return str(item["value"])
    source = item.get("valueFrom", {})
    if "secretKeyRef" in source:
        ref = source["secretKeyRef"]
        key = (ref["name"], ref["key"])
        if key not in secrets:
            raise PodSpecError(f"env {item['name']}: no value given for Secret {key}")
        return secrets[key]
    if "fieldRef" in source:
        path = source["fieldRef"]["fieldPath"]
        if path not in fields:
            raise PodSpecError(f"env {item['name']}: no value given for field {path}")
        return fields[path]
    raise PodSpecError(f"env {item['name']}: unsupported source {source}")


def run_argv(
    engine: str,
    image: str,
    container: dict[str, Any],
    pod_spec: dict[str, Any],
    *,
    volume_dirs: dict[str, Path],
    secrets: dict[tuple[str, str], str] | None = None,
    fields: dict[str, str] | None = None,
    name: str | None = None,
    detach: bool = False,
    args: list[str] | None = None,
) -> list[str]:
    """The ``<engine> run`` argv for ``container`` (``args`` replaces the container's args).

    ``volume_dirs`` maps a volume name to the host directory backing it (PVC, ConfigMap,
    Secret); ``emptyDir`` volumes need none. Raises PodSpecError for what is not covered.
    """
    argv = [engine, "run", *engine_flags(engine), "--network", "host"]
    argv += ["-d"] if detach else ["--rm"]
    if name:
        argv += ["--name", name]
    pod_sc = pod_spec.get("securityContext", {})
    sc = {**pod_sc, **container.get("securityContext", {})}
    uid = sc.get("runAsUser")
    gid = sc.get("runAsGroup", uid)
    if uid is not None:
        argv += ["--user", f"{uid}:{gid}"]
    if sc.get("runAsNonRoot") and uid in (None, 0):
        raise PodSpecError("runAsNonRoot without a non-zero runAsUser: the kubelet would check "
                           "the image's USER, which this emulation does not")
    if "fsGroup" in pod_sc:
        argv += ["--group-add", str(pod_sc["fsGroup"])]
    caps = sc.get("capabilities", {})
    for cap in caps.get("drop", []):
        argv += ["--cap-drop", cap]
    for cap in caps.get("add", []):
        argv += ["--cap-add", cap]
    if sc.get("allowPrivilegeEscalation") is False:
        argv += ["--security-opt", "no-new-privileges"]
    profile = sc.get("seccompProfile", {}).get("type")
    if profile not in (None, "RuntimeDefault"):
        raise PodSpecError(f"seccompProfile {profile} not emulated")
    if sc.get("readOnlyRootFilesystem"):
        argv += ["--read-only"]
        if Path(engine).name == "podman":
            argv += ["--read-only-tmpfs=false"]
    if container.get("workingDir"):
        argv += ["--workdir", container["workingDir"]]
    for item in container.get("env", []):
        argv += ["--env", f"{item['name']}={_env_value(item, secrets or {}, fields or {})}"]
    volumes = {v["name"]: v for v in pod_spec.get("volumes", [])}
    for mount in container.get("volumeMounts", []):
        volume = volumes[mount["name"]]
        target = mount["mountPath"]
        if "emptyDir" in volume:
            # An emptyDir is a fresh directory writable by the pod (mode 0777).
            argv += ["--mount", f"type=tmpfs,destination={target},tmpfs-mode=1777"]
            continue
        if not ({"persistentVolumeClaim", "configMap", "secret"} & volume.keys()):
            raise PodSpecError(f"volume {mount['name']}: kind not emulated: {sorted(volume)}")
        source = volume_dirs[mount["name"]]
        ro = mount.get("readOnly") or "configMap" in volume or "secret" in volume
        argv += ["--volume", f"{source}:{target}{':ro' if ro else ''}"]
    command = container.get("command")
    if command:
        argv += ["--entrypoint", command[0]]
        run_args = [*command[1:], *(container.get("args", []) if args is None else args)]
    else:
        run_args = container.get("args", []) if args is None else args
    return [*argv, image, *run_args]

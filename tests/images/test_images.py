"""The images, built by docker/podman from the repository's Dockerfiles and run as the pods run.

Agent: the operator's own pod builder (``agent_pod``) gives the init and agent containers;
both run from the built image with that spec's user, capabilities, privilege settings,
working directory, environment and mounts (``tests/images/podrun.py``). The shim drives the
image's Claude Code against the scripted model server on the host loopback. Operator: the
Deployment in manifests/base runs ``loopphase operator --help`` and imports every module, with
its read-only root filesystem.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from loopphase.api.spec import LoopPhaseSpec
from loopphase.modelserver.script import Script
from loopphase.modelserver.server import ModelServer
from loopphase.runtime import k8s_objects as ko
from loopphase.shim.client import ShimClient

from tests.images.conftest import AGENT_IMAGE, ROOT, build, run
from tests.images.podrun import engine_flags, run_argv
from tests.realcli.conftest import (
    CLAUDE_ENV,
    OAUTH_TOKEN,
    free_port,
    init_repo,
    pinned_version,
    until,
)

pytestmark = [pytest.mark.images, pytest.mark.timeout(1800)]

KICKOFF = "You are the Builder. Read PLAN.md and start on gate p1."
ANSWER = "Kickoff received inside the agent image."
OWNER = ko.Owner(name="img", namespace="default", uid="uid-images-test")
REMOTE_MOUNT = "/srv/git/remote.git"  # where the test's bare repository appears in containers
MODEL_SECRET = "model-endpoint"


def http_status(url: str, token: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def agent_spec() -> LoopPhaseSpec:
    """A one-agent LoopPhase whose Claude Code reaches the scripted model through Secret env."""
    env = [{"name": name, "secretKeyRef": {"name": MODEL_SECRET, "key": name}}
           for name in ("ANTHROPIC_BASE_URL", "CLAUDE_CODE_OAUTH_TOKEN", *CLAUDE_ENV)]
    return LoopPhaseSpec.model_validate({
        "repo": {"url": f"file://{REMOTE_MOUNT}", "branch": "main"},
        "phases": [{"id": "p1", "plan": "PLAN.md", "statusFile": "STATUS.md"}],
        "agents": {"builder": {"backend": "claude", "env": env}},
    })


def logs(engine: str, name: str) -> str:
    out = run([engine, "logs", name], timeout=30)
    return (out.stdout + out.stderr)[-4000:]


async def test_agent_image_runs_the_shim_with_the_real_claude_code_as_the_pod_does(
    engine: str, agent_image: str, tmp_path: Path
) -> None:
    # the cluster's side: the git remote, the role's PVC, the prompts ConfigMap, the Secrets
    remote = tmp_path / "remote.git"
    seed = init_repo(tmp_path / "seed")
    (seed / "PLAN.md").write_text("# Plan\n\n## Gate p1\nSay hello.\n")
    subprocess.run(["git", "add", "-A"], cwd=seed, check=True, timeout=30)
    subprocess.run(["git", "commit", "-qm", "plan"], cwd=seed, check=True, timeout=30)
    subprocess.run(["git", "clone", "-q", "--bare", str(seed), str(remote)], check=True, timeout=30)
    pvc = tmp_path / "pvc"
    prompts = tmp_path / "prompts"
    pvc.mkdir()
    prompts.mkdir()
    (prompts / ko.kickoff_key("builder", "p1")).write_text(KICKOFF)
    # the kubelet gives the PVC to fsGroup; the remote is the test's, readable by the agent
    subprocess.run(["chown", "-R", "1000:1000", str(pvc), str(remote)], check=True, timeout=30)

    settings = ko.PodSettings(agent_image=agent_image, shim_port=free_port())
    launch = ko.PodLaunch(role="builder", phase_index=0, phase_id="p1", mode="cold",
                          continuation="Continue where you left off.", model=None)
    pod = ko.agent_pod(OWNER, agent_spec(), launch, settings)
    spec = pod["spec"]
    token = uuid.uuid4().hex
    name = f"lp-images-{uuid.uuid4().hex[:8]}"
    volume_dirs = {"work": pvc, "prompts": prompts}
    extra = ["--volume", f"{remote}:{REMOTE_MOUNT}:ro"]

    with ModelServer(Script({})) as model:
        model.load(f"""
agents:
  img:
    turns:
      - text: "{ANSWER}"
""")
        secrets: dict[tuple[str, str], str] = {
            (ko.token_secret_name(OWNER.name, "builder"), ko.TOKEN_KEY): token,
            (MODEL_SECRET, "ANTHROPIC_BASE_URL"): model.base_url("img"),
            (MODEL_SECRET, "CLAUDE_CODE_OAUTH_TOKEN"): OAUTH_TOKEN,
            **{(MODEL_SECRET, key): value for key, value in CLAUDE_ENV.items()},
        }

        # the init container: clones the repository onto the PVC
        (init,) = spec["initContainers"]
        argv = run_argv(engine, agent_image, init, spec, volume_dirs=volume_dirs, secrets=secrets)
        out = run([*argv[:2], *extra, *argv[2:]], timeout=180)
        assert out.returncode == 0, f"init container failed:\n{out.stdout}\n{out.stderr}"
        assert (pvc / "repo" / "PLAN.md").is_file(), "the init container cloned nothing"

        (container,) = spec["containers"]
        assert container["command"] == ["loopphase"] and container["args"][0] == "shim"
        argv = run_argv(engine, agent_image, container, spec, volume_dirs=volume_dirs,
                        secrets=secrets, name=name, detach=True)
        out = run([*argv[:2], *extra, *argv[2:]], timeout=120)
        assert out.returncode == 0, f"agent container did not start:\n{out.stderr}"
        base = f"http://127.0.0.1:{settings.shim_port}/v1"
        client = ShimClient(base.removesuffix("/v1"), token, timeout=15.0)
        try:
            async def health() -> bool:
                status = run([engine, "inspect", "--format", "{{.State.Running}}", name], timeout=30)
                if status.stdout.strip() != "true":
                    raise AssertionError(f"agent container stopped:\n{logs(engine, name)}")
                return await client.health()
            await until(health, bool, 120, "shim health from the container")

            # health needs no token; state needs this one
            status, body = http_status(f"{base}/health")
            assert status == 200 and json.loads(body).get("ok") is True, body
            assert http_status(f"{base}/state")[0] == 401
            assert http_status(f"{base}/state", token="not-the-token")[0] == 401
            status, body = http_status(f"{base}/state", token=token)
            assert status == 200, body

            # the agent: the image's Claude Code, started by the shim, answering the kickoff
            state = await until(client.state, lambda s: ANSWER in s.pane, 180,
                                f"{ANSWER!r} on the agent's screen")
            assert state.alive and state.backend == "claude" and state.role == "builder"
            assert state.phase_id == "p1" and state.start_error is None
            state = await until(
                client.state, lambda s: {"SessionStart", "Stop"} <= {e.name for e in s.hook_events},
                60, "Claude Code's SessionStart and Stop hooks at the shim")
            first = [r for r in model.requests("img") if r.main][0]
            assert first.human_text == KICKOFF
            pin = pinned_version("@anthropic-ai/claude-code")
            assert f"claude-cli/{pin}" in first.headers.get("user-agent", ""), first.headers

            version = run([engine, "exec", name, "claude", "--version"], timeout=60)
            assert version.stdout.split()[0] == pin, version.stdout + version.stderr
            where = run([engine, "exec", name, "sh", "-c", "command -v claude"], timeout=60)
            assert where.stdout.strip() == "/usr/local/bin/claude", where.stdout
            exe = run([engine, "exec", name, "readlink", f"/proc/{state.pid}/exe"], timeout=60)
            assert exe.stdout.strip().startswith("/usr/local/lib/node_modules/@anthropic-ai/"), exe.stdout

            # non-root throughout: every process in the container runs as uid 1000
            uids = run([engine, "exec", name, "ps", "-eo", "uid="], timeout=60)
            assert uids.returncode == 0 and set(uids.stdout.split()) == {"1000"}, uids.stdout
            # the role's state (the Claude Code home the shim seeded) is on the PVC
            assert (pvc / ".loopphase" / "builder" / "agent-home" / "claude").is_dir()
        finally:
            await client.close()
            run([engine, "rm", "-f", "-t", "10", name], timeout=60)


OPERATOR_FIELDS = {"metadata.name": "loopphase-operator-0", "metadata.namespace": "loopphase-system"}


def test_agent_image_with_opencode_carries_both_pinned_clis(engine: str, agent_image: str) -> None:
    """``--build-arg WITH_OPENCODE=1`` adds the pinned opencode next to Claude Code (the
    default build leaves it out); both run as the pod's user."""
    assert run([engine, "run", *engine_flags(engine), "--rm", "--user", "1000:1000",
                "--entrypoint", "sh", agent_image, "-c", "command -v opencode"]).stdout == ""
    tag = AGENT_IMAGE + "-opencode"
    build(engine, "agent", tag, "--build-arg WITH_OPENCODE=1")  # kept: the next run is cached
    for cli, package in (("claude", "@anthropic-ai/claude-code"), ("opencode", "opencode-ai")):
        out = run([engine, "run", *engine_flags(engine), "--rm", "--user", "1000:1000",
                   "--cap-drop", "ALL", "--entrypoint", cli, tag, "--version"], timeout=120)
        assert out.returncode == 0 and out.stdout.split()[0] == pinned_version(package), (
            cli, out.stdout, out.stderr)


def operator_container() -> tuple[dict[str, Any], dict[str, Any]]:
    docs = list(yaml.safe_load_all((ROOT / "manifests" / "base" / "deployment.yaml").read_text()))
    (deployment,) = [d for d in docs if d and d.get("kind") == "Deployment"]
    pod_spec = deployment["spec"]["template"]["spec"]
    (container,) = pod_spec["containers"]
    return container, pod_spec


# Every module imports, except those of an optional extra the image leaves out (the timeline's
# matplotlib), which must say so: "pip install 'loopphase[<extra>]'".
IMPORT_ALL = """
import importlib, json, pkgutil, loopphase
names = sorted(m.name for m in pkgutil.walk_packages(loopphase.__path__, "loopphase."))
failed, optional = {}, {}
for name in names:
    try:
        importlib.import_module(name)
    except ImportError as exc:
        (optional if "loopphase[" in str(exc) else failed)[name] = repr(exc)
    except Exception as exc:
        failed[name] = repr(exc)
print(json.dumps({"modules": len(names), "failed": failed, "optional": optional}))
raise SystemExit(1 if failed else 0)
"""


def test_operator_image_runs_help_and_imports_everything_read_only(
    engine: str, operator_image: str
) -> None:
    container, pod_spec = operator_container()
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    argv = run_argv(engine, operator_image, container, pod_spec, volume_dirs={},
                    fields=OPERATOR_FIELDS, args=["operator", "--help"])
    assert "--read-only" in argv and "--user" in argv
    out = run(argv, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith("usage: loopphase operator"), out.stdout[:500]
    assert "--agent-image" in out.stdout

    walker = dict(container, command=["python3", "-c", IMPORT_ALL])
    out = run(run_argv(engine, operator_image, walker, pod_spec, volume_dirs={},
                       fields=OPERATOR_FIELDS, args=[]), timeout=180)
    assert out.returncode == 0, out.stdout + out.stderr
    walked = json.loads(out.stdout)
    assert walked["modules"] > 50 and not walked["failed"], walked
    assert set(walked["optional"]) <= {"loopphase.timeline.render"}, walked["optional"]

    # the root filesystem really is read-only, /tmp (an emptyDir) is not
    probe = dict(container, command=["sh", "-c", "touch /opt/x 2>/dev/null && echo rootfs-writable; "
                                     "touch /tmp/x && echo tmp-writable; id -u"])
    out = run(run_argv(engine, operator_image, probe, pod_spec, volume_dirs={},
                       fields=OPERATOR_FIELDS, args=[]), timeout=120)
    assert out.stdout.split() == ["tmp-writable", "1000"], out.stdout + out.stderr


def test_image_sizes_are_reported_by_the_bench(engine: str, tmp_path: Path) -> None:
    """``loopphase bench --only images`` builds through images/build.sh (the layer cache at
    this size), prints the sizes and build times and writes them as JSON."""
    output = tmp_path / "images.json"
    out = run([sys.executable, "-m", "loopphase.cli", "bench", "--ci", "--only", "images",
               "--output", str(output)], timeout=1800)
    print(out.stdout)
    assert out.returncode == 0, out.stdout + out.stderr
    result = json.loads(output.read_text())["images"]
    assert result["engine"] == engine and result["fresh"] is False
    assert set(result["builds"]) == {"operator", "agent"}
    for tag in ("loopphase-operator:dev", "loopphase-agent:dev"):
        size = result["images"][tag]
        assert size["bytes"] > 50_000_000 and size["mb"] == round(size["bytes"] / 1e6, 1), size
        assert f"image {tag}" in out.stdout


def test_kind_load_archives_name_the_images_as_the_pods_ask_for_them(
    engine: str, operator_image: str, tmp_path: Path
) -> None:
    """``make kind-load``'s archive names the image ``docker.io/library/<name>:<tag>``: what
    containerd makes of the pods' ``<name>:<tag>`` (podman alone would save ``localhost/...``)."""
    kind = tmp_path / "kind"
    seen = tmp_path / "manifests.jsonl"
    # a stand-in for `kind load image-archive --name C ARCHIVE`: keeps the archive's manifest
    kind.write_text(f'#!/bin/sh\ntar -xOf "$5" manifest.json >> {seen}\necho >> {seen}\n')
    kind.chmod(0o755)
    out = subprocess.run(["bash", str(ROOT / "images" / "kind-load.sh"), "loopphase", operator_image],
                         capture_output=True, text=True, timeout=600, check=False,
                         env={**os.environ, "DOCKER": engine, "KIND": str(kind)})
    assert out.returncode == 0, out.stdout + out.stderr
    (manifest,) = [json.loads(line) for line in seen.read_text().splitlines() if line.strip()]
    assert manifest[0]["RepoTags"] == [f"docker.io/library/{operator_image}"], manifest

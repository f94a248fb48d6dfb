"""SSH-key git credentials end to end: the operator's key files and env, the agent pods' mount
and env, warnings naming the Secret, and no key material in logs. No ssh server is contacted:
ssh is checked with ``ssh -G`` (prints the effective config, never connects) and git's call of
``GIT_SSH_COMMAND`` with a recording stand-in named ``ssh``."""

from __future__ import annotations

import base64
import logging
import os
import shlex
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from loopphase.api.spec import LoopPhaseSpec
from loopphase.git.redact import redact
from loopphase.git.runner import GitRunner
from loopphase.git.ssh import SshKeyStore, is_ssh_url, ssh_argv
from loopphase.operator.context import OperatorContext
from loopphase.operator.git_credentials import (
    CREDENTIALS_NOT_FOUND,
    CREDENTIALS_UNUSABLE,
    HOST_KEY_UNPINNED,
    SSH_KEYS_DIR,
    git_env,
)
from loopphase.operator.kubeapi import Ref
from loopphase.operator.read_cache import ReadCache
from loopphase.runtime import k8s_objects as ko

NS = "team-a"
SSH_URL = "git@git.example.invalid:org/repo.git"
HTTPS_URL = "https://git.example.invalid/org/repo.git"
# Not a real key: the operator only checks the PEM armour; ssh itself is tested with a real one.
FAKE_KEY = (b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ"
            b"SECRETBODYSECRETBODY\n-----END OPENSSH PRIVATE KEY-----\n")
KNOWN = b"git.example.invalid ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKeyHostKeyHostKey\n"
OWNER = ko.Owner(name="demo", namespace=NS, uid="uid-1")


def spec(url: str, secret: str | None = "git-creds") -> LoopPhaseSpec:
    return LoopPhaseSpec.model_validate({
        "repo": {"url": url, "credentialsSecret": secret},
        "phases": [{"id": "p1", "plan": "PLAN.md", "statusFile": "STATUS.md"}],
        "agents": {"builder": {"backend": "sim", "simScenario": "phases: {default: []}"}},
    })


def secret(**data: bytes) -> dict[str, Any]:
    return {"metadata": {"name": "git-creds", "namespace": NS,
                         "labels": {"loopphase.dev/git-credentials": "true"}},
            "data": {k: base64.b64encode(v).decode() for k, v in data.items()}}


class SecretsApi:
    """``get`` of Secrets by reference (what git_env calls), recording the references."""

    def __init__(self, **secrets: dict[str, Any]) -> None:
        self.secrets = dict(secrets)
        self.gets: list[Ref] = []

    async def get(self, ref: Ref) -> dict[str, Any] | None:
        assert ref.plural == "secrets", ref
        self.gets.append(ref)
        return self.secrets.get(ref.name or "")


def context(tmp_path: Path) -> OperatorContext:
    return OperatorContext(pod_settings=ko.PodSettings(), git_cache=tmp_path / "git-cache")


def fresh_reads(ctx: OperatorContext) -> ReadCache:
    """The context's read cache with the TTL cache emptied (a Secret edit seen at once)."""
    ctx.reads._items.clear()
    return ctx.reads


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def command_argv(env: dict[str, str]) -> list[str]:
    return shlex.split(env["GIT_SSH_COMMAND"])


def key_path(env: dict[str, str]) -> Path:
    argv = command_argv(env)
    return Path(argv[argv.index("-i") + 1])


def option(argv: list[str], name: str) -> str | None:
    values = [argv[i + 1].split("=", 1)[1] for i, a in enumerate(argv[:-1])
              if a == "-o" and argv[i + 1].startswith(f"{name}=")]
    return values[-1] if values else None


@pytest.fixture()
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


# -- URL classification ----------------------------------------------------------------------


@pytest.mark.parametrize(("url", "ssh"), [
    ("git@github.com:org/repo.git", True),
    ("ssh://git@host:2222/org/repo.git", True),
    ("git+ssh://host/repo", True),
    ("host:repo", True),
    ("[::1]:repo.git", True),
    ("https://host/org/repo.git", False),
    ("http://user@host/repo", False),
    ("file:///srv/repo.git", False),
    ("/srv/repo.git", False),
    ("./a:b", False),
    ("git://host/repo", False),
])
def test_is_ssh_url(url: str, ssh: bool) -> None:
    assert is_ssh_url(url) is ssh


# -- the operator's own git: env, files, modes -----------------------------------------------


async def test_ssh_key_env_points_at_a_private_key_file(tmp_path: Path, umask_022: None) -> None:
    ctx = context(tmp_path)
    api = SecretsApi(**{"git-creds": secret(**{"ssh-privatekey": FAKE_KEY})})
    env = await git_env(api, NS, spec(SSH_URL), ctx.reads, credentials=ctx.git_credentials)  # type: ignore[arg-type]
    assert env is not None and set(env) == {"GIT_SSH_COMMAND"}  # no http header, no config
    argv = command_argv(env)
    root = tmp_path / "git-cache" / SSH_KEYS_DIR
    key = key_path(env)
    assert argv[0] == "ssh"
    assert option(argv, "IdentitiesOnly") == "yes" and option(argv, "BatchMode") == "yes"
    assert option(argv, "StrictHostKeyChecking") == "accept-new"
    assert option(argv, "UserKnownHostsFile") == str(root / f"{NS}_git-creds" /
                                                      "accepted_known_hosts")
    assert key.read_bytes() == FAKE_KEY
    assert key.is_relative_to(root) and key.is_absolute()
    assert mode(key) == 0o600
    for directory in (root, root / f"{NS}_git-creds", key.parent):
        assert mode(directory) == 0o700, directory
    assert FAKE_KEY.decode() not in env["GIT_SSH_COMMAND"]


async def test_known_hosts_gives_strict_checking(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    api = SecretsApi(**{"git-creds": secret(**{"ssh-privatekey": FAKE_KEY, "known_hosts": KNOWN})})
    env = await git_env(api, NS, spec(SSH_URL), ctx.reads, credentials=ctx.git_credentials)  # type: ignore[arg-type]
    assert env is not None
    argv = command_argv(env)
    pinned = Path(option(argv, "UserKnownHostsFile") or "")
    assert option(argv, "StrictHostKeyChecking") == "yes"
    assert pinned.read_bytes() == KNOWN and mode(pinned) == 0o600
    assert pinned.parent == key_path(env).parent


async def test_modes_hold_under_any_umask_and_a_preexisting_open_dir(tmp_path: Path) -> None:
    root = tmp_path / "keys"
    root.mkdir(mode=0o755)
    os.chmod(root, 0o755)
    old = os.umask(0)
    try:
        files = SshKeyStore(root).materialize(NS, "s", FAKE_KEY, KNOWN)
    finally:
        os.umask(old)
    assert mode(root) == 0o700 and mode(files.key.parent.parent) == 0o700
    assert mode(files.key) == 0o600 and files.known_hosts and mode(files.known_hosts) == 0o600


async def test_rotation_writes_a_new_file_and_removes_the_old(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    api = SecretsApi(**{"git-creds": secret(**{"ssh-privatekey": FAKE_KEY})})
    first = await git_env(api, NS, spec(SSH_URL), fresh_reads(ctx), credentials=ctx.git_credentials)  # type: ignore[arg-type]
    assert first is not None
    old_key = key_path(first)
    accepted = old_key.parent.parent / "accepted_known_hosts"
    accepted.write_text("git.example.invalid ssh-ed25519 AAAA\n")  # what ssh recorded
    again = await git_env(api, NS, spec(SSH_URL), fresh_reads(ctx), credentials=ctx.git_credentials)  # type: ignore[arg-type]
    assert again == first and old_key.stat().st_ino == key_path(again).stat().st_ino

    rotated = FAKE_KEY.replace(b"SECRETBODY", b"ROTATEDKEY")
    api.secrets["git-creds"] = secret(**{"ssh-privatekey": rotated})
    second = await git_env(api, NS, spec(SSH_URL), fresh_reads(ctx), credentials=ctx.git_credentials)  # type: ignore[arg-type]
    assert second is not None and second != first  # a new env: a new watcher in the registry
    assert key_path(second).read_bytes() == rotated
    assert not old_key.parent.exists()
    assert sorted(p.name for p in old_key.parent.parent.iterdir()) == sorted(
        [key_path(second).parent.name, "accepted_known_hosts"])  # trust-on-first-use kept


async def test_key_removed_from_disk_when_the_secret_loses_it_or_goes(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    api = SecretsApi(**{"git-creds": secret(**{"ssh-privatekey": FAKE_KEY})})
    env = await git_env(api, NS, spec(SSH_URL), fresh_reads(ctx), credentials=ctx.git_credentials)  # type: ignore[arg-type]
    assert env is not None and key_path(env).exists()
    api.secrets["git-creds"] = secret(password=b"tok")
    assert await git_env(api, NS, spec(SSH_URL), fresh_reads(ctx), credentials=ctx.git_credentials) is None  # type: ignore[arg-type]
    assert not key_path(env).parent.parent.exists()

    api.secrets["git-creds"] = secret(**{"ssh-privatekey": FAKE_KEY})
    env = await git_env(api, NS, spec(SSH_URL), fresh_reads(ctx), credentials=ctx.git_credentials)  # type: ignore[arg-type]
    assert env is not None and key_path(env).exists()
    del api.secrets["git-creds"]
    assert await git_env(api, NS, spec(SSH_URL), fresh_reads(ctx), credentials=ctx.git_credentials) is None  # type: ignore[arg-type]
    assert not key_path(env).exists()


async def test_both_password_and_key_the_url_picks(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    both = secret(**{"ssh-privatekey": FAKE_KEY, "username": b"bob", "password": b"tok3n"})
    api = SecretsApi(**{"git-creds": both})
    https = await git_env(api, NS, spec(HTTPS_URL), ctx.reads, credentials=ctx.git_credentials,  # type: ignore[arg-type]
                          user="lp-https")
    assert https is not None and "GIT_SSH_COMMAND" not in https
    assert https["GIT_CONFIG_KEY_0"] == "http.extraHeader"
    assert https["GIT_CONFIG_VALUE_0"] == "Authorization: Basic " + base64.b64encode(
        b"bob:tok3n").decode()
    assert not (tmp_path / "git-cache" / SSH_KEYS_DIR).exists()  # no key file for https

    ssh = await git_env(api, NS, spec(SSH_URL), ctx.reads, credentials=ctx.git_credentials,  # type: ignore[arg-type]
                        user="lp-ssh")
    assert ssh is not None and set(ssh) == {"GIT_SSH_COMMAND"}
    # An https LoopPhase sharing the Secret does not remove the ssh one's key file.
    assert await git_env(api, NS, spec(HTTPS_URL), ctx.reads, credentials=ctx.git_credentials,  # type: ignore[arg-type]
                         user="lp-https") == https
    assert key_path(ssh).exists()


async def test_a_key_file_goes_when_no_loopphase_uses_it_any_more(tmp_path: Path) -> None:
    """Found by review: key files stayed on disk after their LoopPhase was deleted or moved
    to another Secret or to https; they now go when their last user does."""
    ctx = context(tmp_path)
    creds = ctx.git_credentials
    api = SecretsApi(**{"git-creds": secret(**{"ssh-privatekey": FAKE_KEY}),
                        "other": secret(**{"ssh-privatekey": FAKE_KEY})})

    async def env_for(user: str, url: str = SSH_URL, name: str | None = "git-creds") -> Any:
        return await git_env(api, NS, spec(url, name), ctx.reads,  # type: ignore[arg-type]
                             credentials=creds, user=user)

    shared = key_path(await env_for("lp-a"))
    assert key_path(await env_for("lp-b")) == shared
    ctx.forget("lp-a")
    assert shared.exists()  # lp-b still reads with it
    await env_for("lp-b", url=HTTPS_URL)  # lp-b moved to https: nobody uses the key
    assert not shared.exists()

    first = key_path(await env_for("lp-c"))
    moved = key_path(await env_for("lp-c", name="other"))  # credentialsSecret changed
    assert moved.exists() and not first.exists()
    await env_for("lp-c", name=None)  # credentialsSecret removed
    assert not moved.exists()

    last = key_path(await env_for("lp-d"))
    ctx.forget("lp-d")  # the LoopPhase was deleted
    assert not last.exists()


async def test_every_loopphase_using_a_bad_secret_gets_its_own_warning(tmp_path: Path) -> None:
    """Found by review: warnings were given once per Secret, so a second LoopPhase on the same
    missing Secret never got its Warning Event."""
    ctx = context(tmp_path)
    api = SecretsApi()
    seen: dict[str, list[str]] = {"lp-a": [], "lp-b": []}
    for user in ("lp-a", "lp-b", "lp-b", "lp-a"):
        await git_env(api, NS, spec(SSH_URL), ctx.reads, credentials=ctx.git_credentials,  # type: ignore[arg-type]
                      warn=lambda reason, _m, u=user: seen[u].append(reason), user=user)
    assert seen == {"lp-a": [CREDENTIALS_NOT_FOUND], "lp-b": [CREDENTIALS_NOT_FOUND]}


async def test_unusable_key_store_path_is_a_warning_not_a_crash(tmp_path: Path, caplog) -> None:
    ctx = OperatorContext(pod_settings=ko.PodSettings(), git_cache=tmp_path / "a b")
    api = SecretsApi(**{"git-creds": secret(**{"ssh-privatekey": FAKE_KEY})})
    with caplog.at_level(logging.WARNING):
        assert await git_env(api, NS, spec(SSH_URL), ctx.reads, credentials=ctx.git_credentials) is None  # type: ignore[arg-type]
    assert "--git-cache-dir" in caplog.text
    with pytest.raises(ValueError, match="absolute"):
        ssh_argv("relative/id")


# -- warnings: once, naming the Secret and the keys; never the key ---------------------------


async def test_secret_without_either_key_warns_once_naming_secret_and_keys(
    tmp_path: Path, caplog
) -> None:
    ctx = context(tmp_path)
    api = SecretsApi(**{"git-creds": secret(username=b"bob")})
    events: list[tuple[str, str]] = []
    with caplog.at_level(logging.WARNING, logger="loopphase"):
        for url in (SSH_URL, SSH_URL, HTTPS_URL, HTTPS_URL):
            env = await git_env(api, NS, spec(url), fresh_reads(ctx), credentials=ctx.git_credentials,  # type: ignore[arg-type]
                                warn=lambda r, m: events.append((r, m)))
            assert env is None
    assert [r for r, _ in events] == [CREDENTIALS_UNUSABLE, CREDENTIALS_UNUSABLE]  # once per use
    for _, message in events:
        assert f"{NS}/git-creds" in message and "spec.repo.credentialsSecret" in message
        assert "`ssh-privatekey`" in message and "`password`" in message
        assert "its keys: username" in message
        assert message in caplog.text

    # Fixed, then broken again: warned again.
    api.secrets["git-creds"] = secret(**{"ssh-privatekey": FAKE_KEY, "known_hosts": KNOWN})
    assert await git_env(api, NS, spec(SSH_URL), fresh_reads(ctx), credentials=ctx.git_credentials,  # type: ignore[arg-type]
                         warn=lambda r, m: events.append((r, m))) is not None
    api.secrets["git-creds"] = secret(username=b"bob")
    await git_env(api, NS, spec(SSH_URL), fresh_reads(ctx), credentials=ctx.git_credentials,  # type: ignore[arg-type]
                  warn=lambda r, m: events.append((r, m)))
    assert [r for r, _ in events] == [CREDENTIALS_UNUSABLE] * 3


async def test_missing_secret_and_unpinned_host_warn_once(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    api = SecretsApi()
    events: list[tuple[str, str]] = []
    for _ in range(2):
        assert await git_env(api, NS, spec(SSH_URL), fresh_reads(ctx), credentials=ctx.git_credentials,  # type: ignore[arg-type]
                             warn=lambda r, m: events.append((r, m))) is None
    api.secrets["git-creds"] = secret(**{"ssh-privatekey": FAKE_KEY})
    for _ in range(2):
        assert await git_env(api, NS, spec(SSH_URL), fresh_reads(ctx), credentials=ctx.git_credentials,  # type: ignore[arg-type]
                             warn=lambda r, m: events.append((r, m))) is not None
    assert [r for r, _ in events] == [CREDENTIALS_NOT_FOUND, HOST_KEY_UNPINNED]
    assert f"{NS}/git-creds" in events[0][1] and "accept-new" in events[1][1]


async def test_not_a_private_key_is_refused_with_the_fix(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    api = SecretsApi(**{"git-creds": secret(**{"ssh-privatekey": b"ssh-ed25519 AAAA pub"})})
    events: list[tuple[str, str]] = []
    assert await git_env(api, NS, spec(SSH_URL), ctx.reads, credentials=ctx.git_credentials,  # type: ignore[arg-type]
                         warn=lambda r, m: events.append((r, m))) is None
    assert len(events) == 1 and "not a PEM/OpenSSH private key" in events[0][1]
    assert not (tmp_path / "git-cache" / SSH_KEYS_DIR / f"{NS}_git-creds").exists()


async def test_no_key_material_in_logs_env_or_git_errors(tmp_path: Path, caplog) -> None:
    ctx = context(tmp_path)
    body = b"SECRETBODYSECRETBODY"
    api = SecretsApi(**{"git-creds": secret(**{"ssh-privatekey": FAKE_KEY})})
    with caplog.at_level(logging.DEBUG):
        env = await git_env(api, NS, spec(SSH_URL), ctx.reads, credentials=ctx.git_credentials)  # type: ignore[arg-type]
        api.secrets["git-creds"] = secret(**{"ssh-privatekey": FAKE_KEY[:-30]})  # truncated
        await git_env(api, NS, spec(SSH_URL), fresh_reads(ctx), credentials=ctx.git_credentials)  # type: ignore[arg-type]
    assert env is not None
    assert body.decode() not in caplog.text and body.decode() not in repr(env)
    # Whatever git or ssh prints goes through redaction, which masks a key block.
    runner = GitRunner(SSH_URL, env=env)
    leaked = f"fatal: bad config {FAKE_KEY.decode()} and {FAKE_KEY[:60].decode()}"
    masked = runner.redact(leaked)
    assert "SECRETBODY" not in masked and "PRIVATE KEY-----" in masked
    assert redact("-----BEGIN RSA PRIVATE KEY-----\nMIIEabc\n-----END RSA PRIVATE KEY-----") == (
        "-----*** PRIVATE KEY-----")


async def test_operator_context_wires_the_key_store_under_the_git_cache(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    assert ctx.git_credentials is not None and ctx.git_credentials.keys is not None
    assert ctx.git_credentials.keys.root == (tmp_path / "git-cache" / SSH_KEYS_DIR).absolute()
    # Without a key store (no credentials given) an ssh key is not used, and nothing is written.
    api = SecretsApi(**{"git-creds": secret(**{"ssh-privatekey": FAKE_KEY})})
    assert await git_env(api, NS, spec(SSH_URL)) is None  # type: ignore[arg-type]
    assert not (tmp_path / "git-cache").exists()


# -- real ssh: a generated key, ssh -G, and git's call of GIT_SSH_COMMAND ----------------------


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (OpenSSH client needed for this check)")
    return path


def run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, **kwargs)


@pytest.fixture()
def real_key(tmp_path: Path) -> tuple[bytes, str]:
    """A fresh unencrypted ed25519 key (private bytes, public key line)."""
    keygen = need("ssh-keygen")
    path = tmp_path / "gen" / "id_ed25519"
    path.parent.mkdir()
    done = run([keygen, "-q", "-t", "ed25519", "-N", "", "-C", "loopphase-test", "-f", str(path)])
    assert done.returncode == 0, done.stderr
    return path.read_bytes(), path.with_suffix(".pub").read_text().split()[1]


def ssh_config(argv: list[str], host_args: list[str]) -> dict[str, str]:
    """``ssh -G``: the effective config for argv (never connects). -G goes first: after the
    host it would be part of the remote command, and ssh would try to connect."""
    done = run([need("ssh"), "-G", *argv[1:], *host_args])
    assert done.returncode == 0, done.stderr
    assert "not accessible" not in done.stderr, done.stderr
    config: dict[str, str] = {}
    for line in done.stdout.splitlines():
        key, _, value = line.partition(" ")
        config.setdefault(key, value)  # identityfile: the first one is ours
    return config


async def test_real_key_loads_and_ssh_reads_the_operator_command(
    tmp_path: Path, real_key: tuple[bytes, str]
) -> None:
    private, public = real_key
    ctx = context(tmp_path)
    api = SecretsApi(**{"git-creds": secret(**{"ssh-privatekey": private.rstrip(b"\n"),
                                                "known_hosts": KNOWN})})
    env = await git_env(api, NS, spec(SSH_URL), ctx.reads, credentials=ctx.git_credentials)  # type: ignore[arg-type]
    assert env is not None
    key = key_path(env)
    # The written key is intact (the missing final newline restored) and its mode is one ssh
    # accepts: ssh-keygen -y loads it as ssh would, and refuses the same file when 0644.
    derived = run([need("ssh-keygen"), "-y", "-f", str(key)])
    assert derived.returncode == 0, derived.stderr
    assert derived.stdout.split()[1] == public
    loose = tmp_path / "loose" / "id"
    loose.parent.mkdir()
    shutil.copy(key, loose)
    os.chmod(loose, 0o644)
    if os.getuid() == loose.stat().st_uid:
        refused = run([need("ssh-keygen"), "-y", "-f", str(loose)])
        assert refused.returncode != 0 and "UNPROTECTED" in refused.stderr

    config = ssh_config(command_argv(env), ["git@git.example.invalid"])
    assert config["identityfile"] == str(key)
    assert config["identitiesonly"] == "yes" and config["batchmode"] == "yes"
    assert config["stricthostkeychecking"] == "true"
    assert config["userknownhostsfile"] == str(key.parent / "known_hosts")


async def test_git_runs_the_command_with_exactly_our_argv(tmp_path: Path) -> None:
    """git runs GIT_SSH_COMMAND through ``sh -c``: a stand-in named ``ssh`` records the argv
    it gets (git's ssh variant detection sees "ssh", as with the real one); then the real
    ``ssh -G`` reads that same argv. Nothing connects anywhere."""
    ctx = context(tmp_path)
    api = SecretsApi(**{"git-creds": secret(**{"ssh-privatekey": FAKE_KEY})})
    env = await git_env(api, NS, spec(SSH_URL), ctx.reads, credentials=ctx.git_credentials)  # type: ignore[arg-type]
    assert env is not None
    ours = command_argv(env)
    record = tmp_path / "argv.txt"
    stand_in = tmp_path / "bin" / "ssh"
    stand_in.parent.mkdir()
    stand_in.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {shlex.quote(str(record))}\nexit 1\n')
    stand_in.chmod(0o755)
    recording = {"GIT_SSH_COMMAND": shlex.join([str(stand_in), *ours[1:]])}
    runner = GitRunner(SSH_URL, env=recording, timeout=20)
    result = runner.run(["ls-remote", SSH_URL])
    assert result.returncode != 0
    got = record.read_text().splitlines()
    assert got[:len(ours) - 1] == ours[1:]  # our options, verbatim and in order
    assert "git@git.example.invalid" in got
    if shutil.which("ssh"):
        config = ssh_config(["ssh", *got], [])
        assert config["identityfile"] == str(key_path(env))
        assert config["stricthostkeychecking"] == "accept-new"


# -- the agent pods ---------------------------------------------------------------------------


def launch() -> ko.PodLaunch:
    return ko.PodLaunch(role="builder", phase_index=0, phase_id="p1", mode="cold",
                        continuation="go on", model=None)


def test_pod_mounts_the_key_read_only_and_sets_git_ssh_command() -> None:
    pod = ko.agent_pod(OWNER, spec(SSH_URL), launch(), ko.PodSettings())
    pod_spec = pod["spec"]
    volume = next(v for v in pod_spec["volumes"] if v["name"] == "git-credentials")
    assert volume["secret"] == {"secretName": "git-creds", "defaultMode": 0o400}
    # The kubelet makes the files root:<fsGroup> and adds group read: the agent (uid 1000,
    # group 1000) reads the key; it does not own it, so ssh does not call 0440 too open.
    assert pod_spec["securityContext"]["fsGroup"] == ko.AGENT_UID
    assert pod_spec["securityContext"]["runAsUser"] == ko.AGENT_UID
    expected = ko.pod_git_ssh_command()
    for container in pod_spec["initContainers"] + pod_spec["containers"]:
        mount = next(m for m in container["volumeMounts"] if m["name"] == "git-credentials")
        assert mount == {"name": "git-credentials", "mountPath": ko.GIT_CREDS_MOUNT,
                         "readOnly": True}
        env = {e["name"]: e for e in container["env"]}
        assert env["GIT_SSH_COMMAND"] == {"name": "GIT_SSH_COMMAND", "value": expected}
    argv = shlex.split(expected)
    assert argv[:3] == ["ssh", "-i", "/etc/loopphase/git/ssh-privatekey"]
    assert option(argv, "IdentitiesOnly") == "yes" and option(argv, "BatchMode") == "yes"
    assert argv[argv.index("-F") + 1] == ko.SSH_CONFIG_FILE
    assert "git.example.invalid" not in expected and "git-creds" not in expected


def test_pod_without_ssh_url_or_secret_gets_no_ssh_command() -> None:
    for url, secret_name in ((HTTPS_URL, "git-creds"), (SSH_URL, None)):
        pod = ko.agent_pod(OWNER, spec(url, secret_name), launch(), ko.PodSettings())
        for container in pod["spec"]["initContainers"] + pod["spec"]["containers"]:
            assert "GIT_SSH_COMMAND" not in {e["name"] for e in container["env"]}


def clone_script_run(tmp_path: Path, files: dict[str, bytes]) -> tuple[Path, str]:
    """Run the init container's constant script for real (paths rewritten into tmp_path)
    with a credentials mount holding ``files``; returns (rewritten home, stderr)."""
    origin, seed = tmp_path / "origin.git", tmp_path / "seed"
    git = lambda *a, cwd=None: subprocess.run(  # noqa: E731
        ["git", *a], cwd=cwd, check=True, capture_output=True, timeout=30)
    git("init", "-q", "--bare", "-b", "main", str(origin))
    git("init", "-q", "-b", "main", str(seed))
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "i",
        cwd=seed)
    git("push", "-q", str(origin), "main", cwd=seed)
    creds = tmp_path / "etc" / "git"
    creds.mkdir(parents=True)
    for name, data in files.items():
        (creds / name).write_bytes(data)
    home = tmp_path / "work" / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_loopphase").write_bytes(b"a copy an older operator made")
    (home / ".gitconfig").write_text('[core]\n\tsshCommand = "ssh -i /old"\n')
    done = run(["/bin/sh", "-c", rewrite(ko.CLONE_SCRIPT, tmp_path), "clone", str(origin),
                "main", "builder"], env={**os.environ, "HOME": str(home)})
    assert done.returncode == 0, done.stderr
    assert not (home / ".ssh" / "id_loopphase").exists()
    assert "sshCommand" not in (home / ".gitconfig").read_text()
    return home, done.stderr


def rewrite(text: str, tmp_path: Path) -> str:
    return text.replace("/work", str(tmp_path / "work")).replace(
        "/etc/loopphase", str(tmp_path / "etc"))


@pytest.mark.parametrize("pinned", [True, False])
def test_init_script_writes_the_host_key_policy_ssh_reads(
    tmp_path: Path, pinned: bool, real_key: tuple[bytes, str]
) -> None:
    files = {"ssh-privatekey": real_key[0]}
    if pinned:
        files["known_hosts"] = KNOWN
    home, stderr = clone_script_run(tmp_path, files)
    config_file = home / ".ssh" / "loopphase_ssh_config"
    assert config_file.read_text() == rewrite(ko.pod_ssh_config(pinned), tmp_path)
    assert mode(config_file) == 0o600 and mode(home / ".ssh") == 0o700
    assert ("no known_hosts" in stderr) is not pinned

    argv = [rewrite(a, tmp_path) for a in shlex.split(ko.pod_git_ssh_command())]
    config = ssh_config(argv, ["git@git.example.invalid"])
    assert config["identityfile"] == str(tmp_path / "etc" / "git" / "ssh-privatekey")
    assert config["identitiesonly"] == "yes" and config["batchmode"] == "yes"
    if pinned:
        assert config["stricthostkeychecking"] == "true"
        assert config["userknownhostsfile"] == str(tmp_path / "etc" / "git" / "known_hosts")
    else:
        assert config["stricthostkeychecking"] == "accept-new"
        assert config["userknownhostsfile"] == str(home / ".ssh" / "known_hosts")


async def test_unlabelled_secret_is_never_sent(tmp_path: Path) -> None:
    """A LoopPhase may name any Secret of its namespace: only one labelled for LoopPhase git
    access is used (a confused deputy otherwise), and the warning says how to label it."""
    warnings: list[tuple[str, str]] = []
    plain = secret(username=b"bot", password=b"hunter2-hunter2")
    del plain["metadata"]["labels"]
    api = SecretsApi(**{"git-creds": plain})
    env = await git_env(api, NS, spec("https://git.example.invalid/r.git"), None,  # type: ignore[arg-type]
                        warn=lambda reason, message: warnings.append((reason, message)))
    assert env is None
    assert warnings and warnings[0][0] == "CredentialsNotAllowed"
    assert "kubectl label secret -n" in warnings[0][1] and "hunter2" not in warnings[0][1]
    plain["metadata"]["labels"] = {"loopphase.dev/git-credentials": "true"}
    env = await git_env(api, NS, spec("https://git.example.invalid/r.git"), None)  # type: ignore[arg-type]
    assert env is not None and any("extraHeader" in v or "Authorization" in v for v in env.values())


def test_credentials_are_never_sent_over_plain_http() -> None:
    from pydantic import ValidationError

    for url in ("http://git.example.invalid/r.git", "git://git.example.invalid/r.git"):
        with pytest.raises(ValidationError, match="only sent over https:// or ssh"):
            spec(url)
    assert spec("http://git.example.invalid/r.git", secret=None).repo.url.startswith("http://")

"""Git credentials for the operator's own ls-remote/fetch, from ``spec.repo.credentialsSecret``:
https username/password as an ``http.extraHeader`` (by env, never argv), or an ssh key written
to a private file under the git cache dir. Problems are warned once each, naming the Secret.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from loopphase.api.spec import LoopPhaseSpec
from loopphase.git.runner import config_env
from loopphase.git.ssh import (
    KNOWN_HOSTS,
    SSH_KEY,
    SshKeyStore,
    is_ssh_url,
    looks_like_private_key,
)
from loopphase.operator.kubeapi import KubeApi, core_ref
from loopphase.operator.read_cache import ReadCache, cached_get

log = logging.getLogger(__name__)

SSH_KEYS_DIR = "ssh-keys"  # under the git cache dir (cache repos there end in ".git")
WarnFn = Callable[[str, str], None]  # (reason, message): e.g. post a Warning Event


@dataclass
class GitCredentials:
    """What the operator derives from credential Secrets for its own git calls: ssh key files
    (under the git cache dir), which LoopPhase uses which key, and the warnings already given.

    Warnings are given once per LoopPhase and problem (each LoopPhase gets its own Event), and
    again when the problem comes back after being fixed. A key's files are removed once no
    LoopPhase uses them any more (deleted, or moved to another Secret or to https), not only
    when the Secret loses its key."""

    keys: SshKeyStore | None
    _warned: set[tuple[str, str, str, str, str]] = field(default_factory=set)
    _key_users: dict[tuple[str, str], set[str]] = field(default_factory=dict)

    def warn(self, namespace: str, name: str, reason: str, message: str,
             warn: WarnFn | None = None, *, via: str = "", user: str = "") -> None:
        """Log ``message`` (and pass it to ``warn``) unless already given for this LoopPhase
        (``user``), Secret, reason and transport ``via``."""
        key = (user, namespace, name, reason, via)
        if key in self._warned:
            return
        self._warned.add(key)
        log.warning("%s", message)
        if warn is not None:
            warn(reason, message)

    def resolved(self, namespace: str, name: str, reason: str, *, via: str = "",
                 user: str = "") -> None:
        self._warned.discard((user, namespace, name, reason, via))

    def discard_key(self, namespace: str, name: str) -> None:
        """The Secret's key files are no longer valid (key gone or unusable): remove them."""
        if self.keys is not None:
            self.keys.discard(namespace, name)

    def use_key(self, user: str, namespace: str, name: str) -> None:
        """``user`` now reads with Secret ``namespace/name``'s key (and no other)."""
        self.release(user, keep=(namespace, name))
        self._key_users.setdefault((namespace, name), set()).add(user)

    def release(self, user: str, keep: tuple[str, str] | None = None) -> None:
        """``user`` no longer uses any key (but ``keep``); keys nobody uses are removed."""
        for ref in [r for r, users in self._key_users.items() if user in users and r != keep]:
            self._key_users[ref].discard(user)
            if not self._key_users[ref]:
                del self._key_users[ref]
                self.discard_key(*ref)

    def forget(self, user: str) -> None:
        """The LoopPhase is gone: its keys (if nobody else uses them) and its warnings."""
        self.release(user)
        self._warned = {w for w in self._warned if w[0] != user}


# Warning reasons (also the Event reasons when the caller posts Events).
CREDENTIALS_NOT_FOUND = "CredentialsNotFound"
CREDENTIALS_UNUSABLE = "CredentialsUnusable"
HOST_KEY_UNPINNED = "HostKeyUnpinned"
CREDENTIALS_NOT_ALLOWED = "CredentialsNotAllowed"
# The label that marks a Secret as meant for LoopPhase git access. Without it, a LoopPhase
# could name any Secret of its namespace and have the operator send its password to the URL
# the spec chose (a confused deputy: creating a LoopPhase would be reading Secrets).
ALLOW_LABEL = "loopphase.dev/git-credentials"


def credentials_refusal(namespace: str, name: str, secret: dict[str, Any]) -> str | None:
    """Why the Secret may not be used as spec.repo.credentialsSecret, or None when it may."""
    labels = (secret.get("metadata") or {}).get("labels") or {}
    if labels.get(ALLOW_LABEL) == "true":
        return None
    return (
        f"Secret {namespace}/{name} (spec.repo.credentialsSecret) is not labelled "
        f"{ALLOW_LABEL}=true, so LoopPhase does not use it (only Secrets marked for LoopPhase "
        f"git access are sent to a repository): kubectl label secret -n {namespace} {name} "
        f"{ALLOW_LABEL}=true"
    )


def _decode(secret: dict[str, Any]) -> dict[str, bytes]:
    return {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items() if v}


async def git_env(
    api: KubeApi,
    namespace: str,
    spec: LoopPhaseSpec,
    cache: ReadCache | None = None,
    *,
    credentials: GitCredentials | None = None,
    warn: WarnFn | None = None,
    user: str = "",
) -> dict[str, str] | None:
    """Credentials for the operator's own ls-remote/fetch, from spec.repo.credentialsSecret.

    The URL picks the credential (a Secret may hold both): an ssh URL (``ssh://``, scp-like
    ``git@host:path``) uses ``ssh-privatekey`` (plus ``known_hosts`` when present), written to
    a 0600 file under the git cache dir and named in ``GIT_SSH_COMMAND``; any other URL uses
    ``username``/``password`` as an ``http.extraHeader`` passed by env (never argv). A problem
    (Secret missing, no usable key) is logged once per LoopPhase (``user``, e.g. its uid) and
    passed to ``warn`` (e.g. an Event), naming the Secret and the keys it needs; git then
    reads unauthenticated.
    """
    creds = credentials
    if creds is None:
        creds = GitCredentials(keys=None)  # no key store: https only; warnings still given
    env, key_ref = await _resolve(api, namespace, spec, cache, creds, warn, user)
    if key_ref is not None:
        creds.use_key(user, *key_ref)
    else:
        creds.release(user)  # reads without a key now: a key only it used is removed
    return env


async def _resolve(
    api: KubeApi, namespace: str, spec: LoopPhaseSpec, cache: ReadCache | None,
    creds: GitCredentials, warn: WarnFn | None, user: str,
) -> tuple[dict[str, str] | None, tuple[str, str] | None]:
    """(env, the Secret whose ssh key the env uses, if any)."""
    name = spec.repo.credentials_secret
    if not name:
        return None, None
    secret = await cached_get(api, core_ref(namespace, "secrets", name), cache)
    if secret is None:
        creds.warn(namespace, name, CREDENTIALS_NOT_FOUND,
                   f"credentials Secret {namespace}/{name} (spec.repo.credentialsSecret) not "
                   "found; git reads go unauthenticated: create it or fix the name", warn,
                   user=user)
        creds.discard_key(namespace, name)
        return None, None
    creds.resolved(namespace, name, CREDENTIALS_NOT_FOUND, user=user)
    refusal = credentials_refusal(namespace, name, secret)
    if refusal is not None:
        creds.warn(namespace, name, CREDENTIALS_NOT_ALLOWED,
                   refusal + "; git reads go unauthenticated", warn, user=user)
        creds.discard_key(namespace, name)
        return None, None
    creds.resolved(namespace, name, CREDENTIALS_NOT_ALLOWED, user=user)
    data = _decode(secret)
    if is_ssh_url(spec.repo.url):
        env = _ssh_env(creds, namespace, name, data, warn, user)
        return env, ((namespace, name) if env is not None else None)
    if SSH_KEY not in data:  # (a key another LoopPhase uses over ssh stays)
        creds.discard_key(namespace, name)
    if "password" not in data:
        creds.warn(namespace, name, CREDENTIALS_UNUSABLE, _unusable(
            namespace, name, data, "spec.repo.url is not an ssh URL, so it needs `password`"), warn,
            via="https", user=user)
        return None, None
    creds.resolved(namespace, name, CREDENTIALS_UNUSABLE, via="https", user=user)
    user_name = data.get("username", b"git").decode("utf-8", "replace")
    pair = user_name.encode() + b":" + data["password"]
    header = "Authorization: Basic " + base64.b64encode(pair).decode()
    return config_env({"http.extraHeader": header}), None


def _unusable(namespace: str, name: str, data: dict[str, bytes], why: str) -> str:
    keys = ", ".join(sorted(data)) or "none"
    return (
        f"credentials Secret {namespace}/{name} (spec.repo.credentialsSecret) has no usable "
        f"git credential ({why}; its keys: {keys}). Expected `ssh-privatekey` (+ optional "
        "`known_hosts`) for ssh URLs, or `password` (+ optional `username`) for https URLs; "
        "git reads go unauthenticated until it does"
    )


def _ssh_env(
    creds: GitCredentials, namespace: str, name: str, data: dict[str, bytes],
    warn: WarnFn | None, user: str,
) -> dict[str, str] | None:
    def problem(message: str, reason: str = CREDENTIALS_UNUSABLE) -> None:
        creds.warn(namespace, name, reason, message, warn, via="ssh", user=user)

    key = data.get(SSH_KEY, b"")
    if not key.strip() or not looks_like_private_key(key):
        problem(_unusable(namespace, name, data, (
            "`ssh-privatekey` is not a PEM/OpenSSH private key (-----BEGIN ... PRIVATE "
            "KEY-----); use an unencrypted key, e.g. from ssh-keygen -t ed25519 -N ''"
        ) if key.strip() else "spec.repo.url is an ssh URL, so it needs `ssh-privatekey`"))
        creds.discard_key(namespace, name)
        return None
    if creds.keys is None:
        log.error("credentials Secret %s/%s: an ssh key needs the operator's key store "
                  "(OperatorContext.git_credentials); git reads go "
                  "unauthenticated", namespace, name)
        return None
    try:
        files = creds.keys.materialize(namespace, name, key, data.get(KNOWN_HOSTS))
    except ValueError as err:
        problem(f"{err}; git reads go unauthenticated")
        return None
    creds.resolved(namespace, name, CREDENTIALS_UNUSABLE, via="ssh", user=user)
    if files.known_hosts is None:
        problem(f"credentials Secret {namespace}/{name} has no `known_hosts`: the operator's ssh "
                "trusts the git host's key on first use (StrictHostKeyChecking=accept-new); "
                "add `known_hosts` (ssh-keyscan HOST, fingerprints checked) to pin it",
                HOST_KEY_UNPINNED)
    else:
        creds.resolved(namespace, name, HOST_KEY_UNPINNED, via="ssh", user=user)
    return files.env()

"""The operator's shared state: one KubeApi, one git watcher registry, one runtime per LoopPhase.

Passed to the handlers explicitly (closures over this object), never as module globals.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loopphase.api.spec import ROLES, LoopPhaseSpec, Role
from loopphase.core.observations import GitObservation
from loopphase.git.registry import WatcherRegistry
from loopphase.git.runner import config_env
from loopphase.git.ssh import (
    KNOWN_HOSTS,
    SSH_KEY,
    SshKeyStore,
    is_ssh_url,
    looks_like_private_key,
)
from loopphase.operator.kubeapi import KubeApi, core_path
from loopphase.operator.pod_cache import PodCache
from loopphase.operator.status_io import LiveObjects
from loopphase.runtime import k8s_objects as ko
from loopphase.runtime.kubernetes import (
    KubernetesRuntime,
    ObservationFn,
    SharedShimFactory,
    ShimFactory,
    default_to_observation,
)

READ_CACHE_TTL = 10.0
SSH_KEYS_DIR = "ssh-keys"  # under the git cache dir (cache repos there end in ".git")

log = logging.getLogger(__name__)

WarnFn = Callable[[str, str], None]  # (reason, message): e.g. post a Warning Event


@dataclass
class GitCredentials:
    """What the operator derives from credential Secrets for its own git calls: ssh key files
    (under the git cache dir), and the warnings already given (once each, not every tick; a
    warning is given again when its problem comes back after being fixed)."""

    keys: SshKeyStore | None
    _warned: set[tuple[str, str, str, str]] = field(default_factory=set)

    def warn(self, namespace: str, name: str, reason: str, message: str,
             warn: WarnFn | None = None, *, via: str = "") -> None:
        """Log ``message`` (and pass it to ``warn``) unless already given for this Secret,
        reason and transport ``via`` (LoopPhases sharing a Secret may use ssh and https)."""
        if (namespace, name, reason, via) in self._warned:
            return
        self._warned.add((namespace, name, reason, via))
        log.warning("%s", message)
        if warn is not None:
            warn(reason, message)

    def resolved(self, namespace: str, name: str, reason: str, *, via: str = "") -> None:
        self._warned.discard((namespace, name, reason, via))

    def discard_key(self, namespace: str, name: str) -> None:
        """The Secret's key files are no longer used: remove them from disk."""
        if self.keys is not None:
            self.keys.discard(namespace, name)


@dataclass
class ReadCache:
    """Short-lived cache of GETs of objects the operator only reads (prompt ConfigMaps,
    credential Secrets): with hundreds of LoopPhases each tick would otherwise GET them again.
    A change is seen within ``ttl`` seconds; a missing object (None) is cached too.

    ``credentials`` holds what is derived from the credential Secrets read through this cache
    (ssh key files, warnings given); the OperatorContext sets it up under its git cache dir."""

    ttl: float = READ_CACHE_TTL
    clock: Callable[[], float] = time.monotonic
    credentials: GitCredentials | None = None
    _items: dict[str, tuple[float, dict[str, Any] | None]] = field(default_factory=dict)

    async def get(self, api: KubeApi, path: str) -> dict[str, Any] | None:
        now = self.clock()
        hit = self._items.get(path)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        value = await api.get(path)
        if len(self._items) > 1000:
            self._items = {k: v for k, v in self._items.items() if now - v[0] < self.ttl}
        self._items[path] = (now, value)
        return value


@dataclass
class OperatorContext:
    pod_settings: ko.PodSettings
    git_cache: Path
    api: KubeApi | None = None
    api_timeout: float = 10.0
    shim_timeout: float = 5.0
    delete_timeout: float = 90.0
    git_timeout: float = 20.0
    shim_factory: ShimFactory = field(default_factory=SharedShimFactory)
    to_observation: ObservationFn = default_to_observation
    runtimes: dict[str, KubernetesRuntime] = field(default_factory=dict)
    git: WatcherRegistry | None = None
    live: LiveObjects = field(default_factory=LiveObjects)
    reads: ReadCache = field(default_factory=ReadCache)
    pods: PodCache = field(default_factory=PodCache)

    def __post_init__(self) -> None:
        if self.reads.credentials is None:
            self.reads.credentials = GitCredentials(SshKeyStore(self.git_cache / SSH_KEYS_DIR))

    def require_api(self) -> KubeApi:
        if self.api is None:
            raise RuntimeError("not logged in to the Kubernetes API yet")
        return self.api

    def git_registry(self) -> WatcherRegistry:
        if self.git is None:
            self.git = WatcherRegistry(self.git_cache, timeout=self.git_timeout)
        return self.git

    def runtime(self, owner: ko.Owner, spec: LoopPhaseSpec) -> KubernetesRuntime:
        """The LoopPhase's runtime (kept across ticks: it caches the shim token)."""
        runtime = self.runtimes.get(owner.uid)
        if runtime is None or runtime.owner != owner:
            runtime = KubernetesRuntime(
                self.require_api(), owner, spec, self.pod_settings,
                shim_factory=self.shim_factory, to_observation=self.to_observation,
                shim_timeout=self.shim_timeout, delete_timeout=self.delete_timeout,
                pods=self.pods,
            )
            self.runtimes[owner.uid] = runtime
        runtime.spec = spec
        return runtime

    def forget(self, uid: str) -> None:
        runtime = self.runtimes.pop(uid, None)
        if runtime is not None:
            self.live.forget(runtime.owner.namespace, runtime.owner.name)
            self.pods.forget(runtime.owner.namespace,
                             [ko.pod_name(runtime.owner.name, role) for role in ROLES])

    async def close(self) -> None:
        """Close what the context opened (the shared shim session, the API session)."""
        closer = getattr(self.shim_factory, "aclose", None)
        if closer is not None:
            await closer()
        if self.api is not None:
            await self.api.close()


@dataclass
class GitSource:
    """The controller tick's git source for one LoopPhase: the shared watcher registry."""

    registry: WatcherRegistry
    url: str
    branch: str
    env: dict[str, str] | None = None

    async def observe(self, cursor: str | None, paths: Sequence[str]) -> GitObservation:
        return await self.registry.observe_async(self.url, self.branch, cursor, paths, self.env)


async def _get(api: KubeApi, path: str, cache: ReadCache | None) -> dict[str, Any] | None:
    return await (cache.get(api, path) if cache is not None else api.get(path))


# Warning reasons (also the Event reasons when the caller posts Events).
CREDENTIALS_NOT_FOUND = "CredentialsNotFound"
CREDENTIALS_UNUSABLE = "CredentialsUnusable"
HOST_KEY_UNPINNED = "HostKeyUnpinned"


def _decode(secret: dict[str, Any]) -> dict[str, bytes]:
    return {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items() if v}


async def git_env(
    api: KubeApi,
    namespace: str,
    spec: LoopPhaseSpec,
    cache: ReadCache | None = None,
    *,
    warn: WarnFn | None = None,
) -> dict[str, str] | None:
    """Credentials for the operator's own ls-remote/fetch, from spec.repo.credentialsSecret.

    The URL picks the credential (a Secret may hold both): an ssh URL (``ssh://``, scp-like
    ``git@host:path``) uses ``ssh-privatekey`` (plus ``known_hosts`` when present), written to
    a 0600 file under the git cache dir and named in ``GIT_SSH_COMMAND``; any other URL uses
    ``username``/``password`` as an ``http.extraHeader`` passed by env (never argv). A problem
    (Secret missing, no usable key) is logged once (and passed to ``warn``, e.g. an Event)
    naming the Secret and the keys it needs; git then reads unauthenticated.
    """
    name = spec.repo.credentials_secret
    if not name:
        return None
    creds = cache.credentials if cache is not None else None
    if creds is None:
        creds = GitCredentials(keys=None)  # no key store: https only; warnings still given
    secret = await _get(api, core_path(namespace, "secrets", name), cache)
    if secret is None:
        creds.warn(namespace, name, CREDENTIALS_NOT_FOUND,
                   f"credentials Secret {namespace}/{name} (spec.repo.credentialsSecret) not "
                   "found; git reads go unauthenticated: create it or fix the name", warn)
        creds.discard_key(namespace, name)
        return None
    creds.resolved(namespace, name, CREDENTIALS_NOT_FOUND)
    data = _decode(secret)
    if is_ssh_url(spec.repo.url):
        return _ssh_env(creds, namespace, name, data, warn)
    if SSH_KEY not in data:  # (a key another LoopPhase uses over ssh stays)
        creds.discard_key(namespace, name)
    if "password" not in data:
        creds.warn(namespace, name, CREDENTIALS_UNUSABLE, _unusable(
            namespace, name, data, "repo.url is not an ssh URL, so it needs `password`"), warn,
            via="https")
        return None
    creds.resolved(namespace, name, CREDENTIALS_UNUSABLE, via="https")
    user = data.get("username", b"git").decode("utf-8", "replace")
    pair = user.encode() + b":" + data["password"]
    header = "Authorization: Basic " + base64.b64encode(pair).decode()
    return config_env({"http.extraHeader": header})


def _unusable(namespace: str, name: str, data: dict[str, bytes], why: str) -> str:
    keys = ", ".join(sorted(data)) or "none"
    return (
        f"credentials Secret {namespace}/{name} (spec.repo.credentialsSecret) has no usable "
        f"git credential ({why}; its keys: {keys}). Expected `ssh-privatekey` (+ optional "
        "`known_hosts`) for ssh URLs, or `password` (+ optional `username`) for https URLs; "
        "git reads go unauthenticated until it does"
    )


def _ssh_env(
    creds: GitCredentials, namespace: str, name: str, data: dict[str, bytes], warn: WarnFn | None
) -> dict[str, str] | None:
    def problem(message: str, reason: str = CREDENTIALS_UNUSABLE) -> None:
        creds.warn(namespace, name, reason, message, warn, via="ssh")

    key = data.get(SSH_KEY, b"")
    if not key.strip() or not looks_like_private_key(key):
        problem(_unusable(namespace, name, data, (
            "`ssh-privatekey` is not a PEM/OpenSSH private key (-----BEGIN ... PRIVATE "
            "KEY-----); use an unencrypted key, e.g. from ssh-keygen -t ed25519 -N ''"
        ) if key.strip() else "repo.url is an ssh URL, so it needs `ssh-privatekey`"))
        creds.discard_key(namespace, name)
        return None
    if creds.keys is None:
        log.error("credentials Secret %s/%s: an ssh key needs the operator's key store "
                  "(ReadCache.credentials, set up by OperatorContext); git reads go "
                  "unauthenticated", namespace, name)
        return None
    try:
        files = creds.keys.materialize(namespace, name, key, data.get(KNOWN_HOSTS))
    except ValueError as err:
        problem(f"{err}; git reads go unauthenticated")
        return None
    creds.resolved(namespace, name, CREDENTIALS_UNUSABLE, via="ssh")
    if files.known_hosts is None:
        problem(f"credentials Secret {namespace}/{name} has no `known_hosts`: the operator's ssh "
                "trusts the git host's key on first use (StrictHostKeyChecking=accept-new); "
                "add `known_hosts` (ssh-keyscan HOST, fingerprints checked) to pin it",
                HOST_KEY_UNPINNED)
    else:
        creds.resolved(namespace, name, HOST_KEY_UNPINNED, via="ssh")
    return files.env()


async def role_prompts(
    api: KubeApi, namespace: str, spec: LoopPhaseSpec, cache: ReadCache | None = None
) -> dict[Role, str]:
    """Each role's standing prompt: inline text or a ConfigMap key (one GET per ConfigMap)."""
    out: dict[Role, str] = {}
    seen: dict[str, dict[str, Any] | None] = {}
    for role in spec.roles():
        source = spec.agent(role).prompt
        if source is None:
            out[role] = ""
        elif source.inline is not None:
            out[role] = source.inline
        elif source.config_map_key_ref is not None:
            ref = source.config_map_key_ref
            if ref.name not in seen:
                seen[ref.name] = await _get(api, core_path(namespace, "configmaps", ref.name),
                                            cache)
            data = (seen[ref.name] or {}).get("data") or {}
            if ref.key not in data:
                log.warning("prompt ConfigMap %s/%s has no key %s", namespace, ref.name, ref.key)
            out[role] = str(data.get(ref.key, ""))
        else:
            log.warning("agents.%s.prompt.file only works with `loopphase run`", role)
            out[role] = ""
    return out

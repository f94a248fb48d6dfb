"""The operator's shared state: one KubeApi, one git watcher registry, one runtime per LoopPhase.

Passed to the handlers explicitly (closures over this object), never as module globals.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loopphase.api.spec import ROLES, LoopPhaseSpec, Role
from loopphase.controller.account_holds import MemoryHoldRegistry
from loopphase.git.registry import WatcherRegistry
from loopphase.git.source import WatchedRemote
from loopphase.git.ssh import SshKeyStore
from loopphase.metrics import LoopMetrics
from loopphase.notify import Notifier
from loopphase.operator.git_credentials import SSH_KEYS_DIR, GitCredentials
from loopphase.operator.kubeapi import KubeApi, core_ref
from loopphase.operator.pod_cache import PodCache
from loopphase.operator.read_cache import ReadCache, cached_get
from loopphase.operator.status_io import LiveObjects
from loopphase.operator.webhooks import OperatorWebhooks
from loopphase.runtime import k8s_objects as ko
from loopphase.runtime.kubernetes import (
    KubernetesRuntime,
    ObservationFn,
    SharedShimFactory,
    ShimFactory,
    default_to_observation,
)

log = logging.getLogger(__name__)


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
    git_credentials: GitCredentials | None = None  # ssh key files under git_cache, warnings
    webhooks: OperatorWebhooks = field(default_factory=lambda: OperatorWebhooks(None))
    # Account holds every LoopPhase of this operator publishes and reads (keyed namespace/name).
    account_holds: MemoryHoldRegistry = field(default_factory=MemoryHoldRegistry)
    metrics: LoopMetrics = field(default_factory=LoopMetrics)  # this process's registry
    notifiers: dict[str, Notifier] = field(default_factory=dict)  # per LoopPhase uid

    def __post_init__(self) -> None:
        if self.git_credentials is None:
            self.git_credentials = GitCredentials(SshKeyStore(self.git_cache / SSH_KEYS_DIR))

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
        self.webhooks.forget(uid)
        if self.git_credentials is not None:
            self.git_credentials.forget(uid)
        runtime = self.runtimes.pop(uid, None)
        if runtime is not None:
            self.account_holds.forget(f"{runtime.owner.namespace}/{runtime.owner.name}")
            self.live.forget(runtime.owner.namespace, runtime.owner.name)
            self.pods.forget(runtime.owner.namespace,
                             [ko.pod_name(runtime.owner.name, role) for role in ROLES])

    async def close(self) -> None:
        """Close what the context opened (the webhook receiver, notifiers, the shared shim
        session, the API session)."""
        await self.webhooks.stop()
        for notifier in self.notifiers.values():
            await notifier.close()
        closer = getattr(self.shim_factory, "aclose", None)
        if closer is not None:
            await closer()
        if self.api is not None:
            await self.api.close()
            self.api = None


GitSource = WatchedRemote  # the controller tick's git source for one LoopPhase


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
                seen[ref.name] = await cached_get(
                    api, core_ref(namespace, "configmaps", ref.name), cache)
            data = (seen[ref.name] or {}).get("data") or {}
            if ref.key not in data:
                log.warning("prompt ConfigMap %s/%s has no key %s", namespace, ref.name, ref.key)
            out[role] = str(data.get(ref.key, ""))
        else:
            log.warning("spec.agents.%s.prompt.file only works with `loopphase run`", role)
            out[role] = ""
    return out

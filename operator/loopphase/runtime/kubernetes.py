"""KubernetesRuntime: the AgentRuntime whose hosts are pods (one per LoopPhase and role).

observe  = read the pod (from the watch-fed ``PodCache`` when one is given, else GET) + ask its shim (http://<podIP>:<port>, bearer token) for state
start    = ensure Secret / ConfigMap / PVC, create the pod; 409 on the pod = it exists: adopt it
restart  = the shim's restart call (a dead or missing host is recreated instead)
recreate = delete the pod, verify it is gone, create it again
stop     = delete the pod and verify it is gone (the PVC stays)
send     = the shim's send call

Every API call has the KubeApi timeout; every shim call has ``shim_timeout``; deletions are
verified by polling with a deadline. Failures come back as ``HostResult(ok=False)`` or as an
observation with ``error`` set, never as a hang.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

import aiohttp

from loopphase.api.spec import LoopPhaseSpec, Role
from loopphase.core.observations import AgentObservation
from loopphase.operator.git_credentials import credentials_refusal
from loopphase.operator.kubeapi import KubeApi, KubeApiError, core_ref, custom_ref
from loopphase.operator.pod_cache import PodCache
from loopphase.runtime import k8s_objects as ko
from loopphase.runtime.base import HostResult, LaunchPlan

# The label that lets a Secret's values reach an agent's environment (agents.<role>.env).
ENV_ALLOW_LABEL = "loopphase.dev/agent-env"

log = logging.getLogger(__name__)


def _shim_errors() -> tuple[type[BaseException], ...]:
    """What a failed shim call may raise: transport errors plus the client's own error type."""
    errors: list[type[BaseException]] = [
        TimeoutError, OSError, RuntimeError, ValueError, aiohttp.ClientError, KubeApiError,
    ]
    try:
        from loopphase.shim import client as shim_client
    except ImportError:
        return tuple(errors)
    for name in ("ShimError", "ShimClientError"):
        extra = getattr(shim_client, name, None)
        if isinstance(extra, type) and issubclass(extra, BaseException):
            errors.append(extra)
    return tuple(errors)


class ShimLike(Protocol):
    """The part of ``loopphase.shim.client.ShimClient`` the runtime uses."""

    async def state(self) -> Any: ...
    async def send(self, text: str) -> Any: ...
    async def restart(
        self, mode: str, kickoff: str, continuation: str, phase_index: int, phase_id: str
    ) -> Any: ...
    async def stop(self) -> Any: ...


ShimFactory = Callable[[str, str, float], ShimLike]
ObservationFn = Callable[[Role, Any, str | None], AgentObservation]


def default_shim_factory(base_url: str, token: str, timeout: float) -> ShimLike:
    from loopphase.shim.client import ShimClient

    return ShimClient(base_url, token, timeout)  # type: ignore[no-any-return]


class SharedShimFactory:
    """Shim clients that share one aiohttp session: keep-alive connections to each pod's shim
    instead of a new session and TCP connection per call (the per-tick observe polls every
    agent). The session is created lazily inside the running loop; ``aclose`` ends it."""

    def __init__(self, limit: int = 256, keepalive: float = 75.0) -> None:
        self.limit = limit
        self.keepalive = keepalive
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(
                limit=self.limit, keepalive_timeout=self.keepalive))
        return self._session

    def __call__(self, base_url: str, token: str, timeout: float) -> ShimLike:
        from loopphase.shim.client import ShimClient

        return ShimClient(base_url, token, timeout, session=self.session())

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _stale_connection(err: BaseException) -> bool:
    """A pooled keep-alive connection the peer had closed (e.g. a new pod on the same IP)."""
    cause = err.__cause__ if err.__cause__ is not None else err
    return isinstance(cause, (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError))


def default_to_observation(role: Role, state: Any, error: str | None) -> AgentObservation:
    from loopphase.shim.client import to_observation

    return to_observation(role, state, error)  # type: ignore[no-any-return]


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        log.warning("unparsable timestamp %r on a pod", value)
        return None


def _result_ok(result: Any) -> tuple[bool, str]:
    """Interpret a shim call's return value: bool, an object with ``ok``/``detail``, or None."""
    if isinstance(result, bool):
        return result, ""
    ok = getattr(result, "ok", getattr(result, "accepted", None))
    if isinstance(ok, bool):
        return ok, str(getattr(result, "detail", "") or getattr(result, "error", "") or "")
    if isinstance(result, dict) and isinstance(result.get("ok"), bool):
        return result["ok"], str(result.get("detail") or result.get("error") or "")
    return True, ""


async def _close(shim: ShimLike) -> None:
    for name in ("aclose", "close"):
        closer = getattr(shim, name, None)
        if closer is not None:
            outcome = closer()
            if asyncio.iscoroutine(outcome):
                await outcome
            return


@dataclasses.dataclass(frozen=True)
class PodFacts:
    """What the pod object says about the host (no shim call)."""

    name: str
    ours: bool
    terminating: bool
    ip: str | None
    phase: str
    phase_index: int | None
    created_at: datetime | None
    restarts: int
    reason: str
    pending_reason: str = ""

    @property
    def finished(self) -> bool:
        return self.phase in {"Failed", "Succeeded"}


def pod_facts(pod: dict[str, Any], owner_uid: str) -> PodFacts:
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    refs = meta.get("ownerReferences") or []
    ours = any(ref.get("uid") == owner_uid and ref.get("controller") for ref in refs)
    raw_index = (meta.get("annotations") or {}).get(ko.ANN_PHASE_INDEX)
    try:
        phase_index = int(raw_index) if raw_index is not None else None
    except ValueError:
        log.warning("pod %s has a non-integer phase-index annotation %r", meta.get("name"), raw_index)
        phase_index = None
    restarts = sum(int(c.get("restartCount") or 0) for c in status.get("containerStatuses") or [])
    return PodFacts(
        name=str(meta.get("name", "")),
        ours=ours,
        terminating=bool(meta.get("deletionTimestamp")),
        ip=status.get("podIP") or None,
        phase=str(status.get("phase") or "Pending"),
        phase_index=phase_index,
        created_at=_parse_time(meta.get("creationTimestamp")),
        restarts=restarts,
        reason=str(status.get("reason") or status.get("message") or ""),
        pending_reason=_pending_reason(status),
    )


def _pending_reason(status: dict[str, Any]) -> str:
    """Why a Pending pod is not running yet, as the kubelet/scheduler put it: a waiting
    container's reason ("ImagePullBackOff: ...", "ContainerCreating"), else a false condition
    ("PodScheduled: Unschedulable: 0/3 nodes ..."), else ""."""
    for key in ("initContainerStatuses", "containerStatuses"):
        for container in status.get(key) or []:
            waiting = (container.get("state") or {}).get("waiting") or {}
            if waiting.get("reason"):
                return ": ".join(str(x) for x in (waiting["reason"], waiting.get("message")) if x)
    for condition in status.get("conditions") or []:
        if condition.get("status") == "False" and condition.get("reason"):
            parts = (condition.get("type"), condition["reason"], condition.get("message"))
            return ": ".join(str(x) for x in parts if x)
    return ""


class KubernetesRuntime:
    """The runtime for one LoopPhase (owner) in its namespace."""

    def __init__(
        self,
        api: KubeApi,
        owner: ko.Owner,
        spec: LoopPhaseSpec,
        settings: ko.PodSettings | None = None,
        *,
        shim_factory: ShimFactory = default_shim_factory,
        to_observation: ObservationFn = default_to_observation,
        shim_timeout: float = 5.0,
        delete_timeout: float = 90.0,
        poll_interval: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
        pods: PodCache | None = None,
    ) -> None:
        self.api = api
        self.owner = owner
        self.spec = spec
        self.settings = settings or ko.PodSettings()
        self.shim_factory = shim_factory
        self.to_observation = to_observation
        self.shim_timeout = shim_timeout
        self.delete_timeout = delete_timeout
        self.poll_interval = poll_interval
        self.clock = clock
        self.pods = pods
        self._tokens: dict[Role, str] = {}
        self._network_policy_ready = False

    # -- paths ---------------------------------------------------------------------------------

    def _pod_path(self, role: Role | None = None) -> str:
        name = None if role is None else ko.pod_name(self.owner.name, role)
        return core_ref(self.owner.namespace, "pods", name)

    async def _get_pod(self, role: Role) -> dict[str, Any] | None:
        """GET the pod (authoritative); the pod cache stops trusting the watch for it until
        the watch shows the same."""
        pod = await self.api.get(self._pod_path(role))
        self._record(role, pod)
        return pod

    def _record(self, role: Role, pod: dict[str, Any] | None, gone_uid: str | None = None) -> None:
        if self.pods is not None:
            self.pods.record(self.owner.namespace, ko.pod_name(self.owner.name, role), pod,
                             gone_uid=gone_uid)

    async def _read_pod(self, role: Role) -> dict[str, Any] | None:
        """The pod for ``observe``: from the watch-fed cache when it can answer, else GET."""
        if self.pods is not None:
            known, pod = self.pods.lookup(self.owner.namespace, ko.pod_name(self.owner.name, role))
            if known:
                return pod
        return await self._get_pod(role)

    # -- owned support objects -----------------------------------------------------------------

    async def token(self, role: Role) -> str:
        """The role's shim token: read from (or first written to) ``<lp>-<role>-shim-token``."""
        if role in self._tokens:
            return self._tokens[role]
        name = ko.token_secret_name(self.owner.name, role)
        path = core_ref(self.owner.namespace, "secrets", name)
        secret = await self.api.get(path)
        if secret is None:
            candidate = secrets.token_urlsafe(32)
            try:
                secret = await self.api.create(
                    core_ref(self.owner.namespace, "secrets"),
                    ko.token_secret(self.owner, role, candidate),
                )
            except KubeApiError as err:
                if err.status != 409:
                    raise
                secret = await self.api.get(path)  # created concurrently: use that one
        refs = ((secret or {}).get("metadata") or {}).get("ownerReferences") or []
        if not any(ref.get("uid") == self.owner.uid and ref.get("controller") for ref in refs):
            # Someone else's Secret with our name (planted before the first start, or left by
            # an older LoopPhase of the same name): its token is known to whoever wrote it.
            raise RuntimeError(
                f"Secret {self.owner.namespace}/{name} exists but is not owned by this "
                "LoopPhase, so its token may be known to others: delete it (kubectl delete "
                f"secret -n {self.owner.namespace} {name}) and the operator creates a new one"
            )
        token = ko.read_token(secret or {})
        if not token:
            raise RuntimeError(f"Secret {name} has no token key")
        self._tokens[role] = token
        return token

    async def _ensure_prompts(self, wanted: dict[str, str]) -> None:
        name = ko.prompts_configmap_name(self.owner.name)
        path = core_ref(self.owner.namespace, "configmaps", name)
        current = await self.api.get(path)
        if current is None:
            try:
                await self.api.create(
                    core_ref(self.owner.namespace, "configmaps"),
                    ko.prompts_configmap(self.owner, wanted),
                )
                return
            except KubeApiError as err:
                if err.status != 409:
                    raise
                current = await self.api.get(path) or {}
        data = current.get("data") or {}
        changed = {key: value for key, value in wanted.items() if data.get(key) != value}
        if changed:
            await self.api.merge_patch(path, {"data": changed})

    async def _credentials_refusal(self) -> str | None:
        """The agent pod mounts spec.repo.credentialsSecret: only a Secret labelled for
        LoopPhase (see operator.git_credentials.ALLOW_LABEL), never an arbitrary one."""
        name = self.spec.repo.credentials_secret
        if not name:
            return None
        secret = await self.api.get(core_ref(self.owner.namespace, "secrets", name))
        if secret is None:
            return (f"credentials Secret {self.owner.namespace}/{name} "
                    "(spec.repo.credentialsSecret) not found: create it or fix the name")
        return credentials_refusal(self.owner.namespace, name, secret)

    async def _env_refusal(self, role: Role) -> str | None:
        """agents.<role>.env puts a Secret's value in the agent's environment: only Secrets
        labelled ``loopphase.dev/agent-env: "true"`` (the operator must not be the deputy that
        reads any Secret of the namespace for whoever may create a LoopPhase), and never a
        shim token (one token per role: a builder reading the adversary's would drive it)."""
        from loopphase.api.spec import agent_field

        for index, item in enumerate(self.spec.agent(role).env):
            name = item.secret_key_ref.name
            field = f"{agent_field(self.spec, role)}.env[{index}] ({item.name})"
            if name.endswith("-shim-token"):
                return (f"{field} names Secret {name}: shim tokens are never handed to an agent; "
                        "use another Secret")
            secret = await self.api.get(core_ref(self.owner.namespace, "secrets", name))
            if secret is None:
                return (f"{field}: Secret {self.owner.namespace}/{name} not found: create it or "
                        "fix the name")
            labels = (secret.get("metadata") or {}).get("labels") or {}
            if labels.get(ENV_ALLOW_LABEL) != "true":
                return (f"{field}: Secret {self.owner.namespace}/{name} is not labelled "
                        f"{ENV_ALLOW_LABEL}=true, so no agent pod reads it (only Secrets marked "
                        f"for LoopPhase agents are): kubectl label secret -n "
                        f"{self.owner.namespace} {name} {ENV_ALLOW_LABEL}=true")
        return None

    async def _ensure_network_policy(self) -> None:
        """Create ``<lp>-agents`` once per runtime. Refused (no RBAC, no API) is logged and the
        start goes on: the shims still require their per-role bearer token."""
        if self._network_policy_ready:
            return
        path = custom_ref("networking.k8s.io", "v1", self.owner.namespace, "networkpolicies")
        try:
            await self.api.create(path, ko.agents_network_policy(self.owner, self.settings))
        except KubeApiError as err:
            if err.status != 409:
                log.warning("could not create NetworkPolicy %s: %s (agents' shim ports are "
                            "guarded by their tokens only)", ko.network_policy_name(self.owner.name), err)
                return
        self._network_policy_ready = True

    async def _ensure_pvc(self, role: Role) -> None:
        try:
            await self.api.create(
                core_ref(self.owner.namespace, "persistentvolumeclaims"),
                ko.work_pvc(self.owner, role, self.settings),
            )
        except KubeApiError as err:
            if err.status != 409:
                raise

    def _scenario(self, role: Role) -> str | None:
        agent = self.spec.agent(role)
        return agent.sim_scenario if agent.backend == "sim" else None

    def _cannot_start(self, role: Role) -> str | None:
        """What keeps a pod for ``role`` from ever starting, known before creating it: a sim
        scenario given as a file path (a cluster has only what the spec holds)."""
        from loopphase.api.spec import agent_field
        from loopphase.sim.scenario import ScenarioError, scenario_source

        agent = self.spec.agent(role)
        if agent.backend != "sim" or agent.sim_scenario is None:
            return None
        try:
            kind, value = scenario_source(agent.sim_scenario)
        except ScenarioError as err:
            return f"{agent_field(self.spec, role)}.simScenario: {err}"
        if kind == "path":
            return (f"{agent_field(self.spec, role)}.simScenario names a file ({value}); on a cluster "
                    "give the scenario inline (YAML text that is a mapping with 'phases')")
        return None

    # -- AgentRuntime --------------------------------------------------------------------------

    async def observe(self, role: Role) -> AgentObservation:
        try:
            pod = await self._read_pod(role)
        except (KubeApiError, TimeoutError, OSError) as err:
            return AgentObservation(role=role, present=False, error=f"reading pod: {err}")
        if pod is None:
            return AgentObservation(role=role, present=False, cannot_start=self._cannot_start(role))
        facts = pod_facts(pod, self.owner.uid)
        base = AgentObservation(
            role=role,
            present=True,
            alive=False,
            pod_name=facts.name,
            phase_index=facts.phase_index,
            started_at=facts.created_at,
            restarts=facts.restarts,
            terminating=facts.terminating,
        )
        if not facts.ours:
            return dataclasses.replace(
                base, terminating=True,
                error=f"pod {facts.name} belongs to another owner; waiting for it to go",
            )
        if facts.terminating:
            return dataclasses.replace(base, error=f"pod {facts.name} is terminating")
        if facts.finished:
            return dataclasses.replace(
                base, error=f"pod {facts.name} {facts.phase}: {facts.reason}".rstrip(": ")
            )
        if facts.ip is None:
            why = f"{facts.phase}: {facts.pending_reason}" if facts.pending_reason else facts.phase
            return dataclasses.replace(base, error=f"pod {facts.name} has no IP yet ({why})",
                                       host_pending=facts.phase == "Pending")
        try:
            try:
                state = await self._shim_call(role, facts.ip, "state")
            except _shim_errors() as err:
                if not _stale_connection(err):
                    raise
                state = await self._shim_call(role, facts.ip, "state")  # once, on a fresh connection
        except _shim_errors() as err:
            if facts.phase == "Pending":  # has its IP, but init/pull/container start still runs
                why = f" (Pending: {facts.pending_reason})" if facts.pending_reason else " (Pending)"
                return dataclasses.replace(base, error=f"shim at {facts.ip}: {err}{why}",
                                           host_pending=True)
            return dataclasses.replace(base, error=f"shim at {facts.ip}: {err}")
        observed = self.to_observation(role, state, None)
        return dataclasses.replace(
            observed,
            present=True,
            pod_name=facts.name,
            phase_index=facts.phase_index if facts.phase_index is not None else observed.phase_index,
            restarts=facts.restarts,
            terminating=False,
            started_at=observed.started_at or facts.created_at,
        )

    async def start(self, plan: LaunchPlan) -> HostResult:
        try:
            return await self._start(plan)
        except (KubeApiError, TimeoutError, OSError, RuntimeError) as err:
            return HostResult(False, f"start {plan.role}: {err}")

    async def _start(self, plan: LaunchPlan) -> HostResult:
        role = plan.role
        await self.token(role)
        phase_id = plan.phase_id
        prompts = {ko.kickoff_key(role, phase_id): plan.kickoff}
        scenario = self._scenario(role)
        if scenario:
            prompts[ko.scenario_key(role)] = scenario
        refusal = await self._credentials_refusal() or await self._env_refusal(role)
        if refusal is not None:
            return HostResult(False, refusal)
        await self._ensure_prompts(prompts)
        await self._ensure_pvc(role)
        await self._ensure_network_policy()
        launch = ko.PodLaunch(
            role=role, phase_index=plan.phase_index, phase_id=phase_id, mode=plan.mode,
            continuation=plan.continuation, model=plan.model,
        )
        body = ko.agent_pod(self.owner, self.spec, launch, self.settings, bool(scenario))
        try:
            created = await self.api.create(self._pod_path(), body)
        except KubeApiError as err:
            if err.status != 409:
                raise
            return await self._adopt(role)
        # The watch may not have delivered it yet: never read "absent" from a lagging cache.
        self._record(role, created if isinstance(created, dict) else body)
        log.info("created pod %s (%s, phase %s)", body["metadata"]["name"], plan.mode, phase_id)
        return HostResult(True, f"created pod {body['metadata']['name']} ({plan.mode}, {phase_id})")

    async def _adopt(self, role: Role) -> HostResult:
        """The pod name is taken (409): adopt our live pod, never create a second one."""
        pod = await self._get_pod(role)
        name = ko.pod_name(self.owner.name, role)
        if pod is None:
            return HostResult(False, f"pod {name} conflicted but is gone now; retry next tick")
        facts = pod_facts(pod, self.owner.uid)
        if not facts.ours:
            return HostResult(False, f"pod {name} exists and belongs to another owner")
        if facts.terminating:
            return HostResult(False, f"pod {name} is still terminating; not starting a second")
        return HostResult(True, f"adopted existing pod {name}")

    async def restart(self, plan: LaunchPlan) -> HostResult:
        try:
            pod = await self._get_pod(plan.role)
        except (KubeApiError, TimeoutError, OSError) as err:
            return HostResult(False, f"restart {plan.role}: reading pod: {err}")
        if pod is None:
            return await self.start(plan)
        facts = pod_facts(pod, self.owner.uid)
        if not facts.ours or facts.terminating:
            return HostResult(False, f"pod {facts.name} is not ours or is terminating")
        if facts.finished or facts.ip is None or facts.phase_index != plan.phase_index:
            # No shim to talk to (or a pod labelled for another phase): the host itself goes.
            return await self.recreate(plan)
        try:
            result = await self._shim_call(
                plan.role, facts.ip, "restart", plan.mode, plan.kickoff, plan.continuation,
                plan.phase_index, plan.phase_id,
            )
        except _shim_errors() as err:
            return HostResult(False, f"shim restart on {facts.name}: {err}")
        ok, detail = _result_ok(result)
        return HostResult(ok, detail or f"restarted {plan.role} in {facts.name} ({plan.mode})")

    async def recreate(self, plan: LaunchPlan) -> HostResult:
        gone = await self.stop(plan.role)
        if not gone.ok:
            return HostResult(False, f"recreate {plan.role}: {gone.detail}")
        started = await self.start(plan)
        return HostResult(started.ok, f"recreated: {started.detail}")

    async def stop(self, role: Role) -> HostResult:
        name = ko.pod_name(self.owner.name, role)
        try:
            pod = await self._get_pod(role)
            if pod is None:
                return HostResult(True, f"pod {name} already gone")
            uid = (pod.get("metadata") or {}).get("uid")
            facts = pod_facts(pod, self.owner.uid)
            if not facts.ours:
                return HostResult(True, f"pod {name} belongs to another owner; left alone")
            if not facts.terminating:
                await self.api.delete(self._pod_path(role))
            return await self._wait_gone(role, uid)
        except (KubeApiError, TimeoutError, OSError) as err:
            return HostResult(False, f"stop {role}: {err}")

    async def _wait_gone(self, role: Role, uid: str | None) -> HostResult:
        """Poll until the pod (that uid) no longer exists; kill, verify gone, then record."""
        name = ko.pod_name(self.owner.name, role)
        deadline = self.clock() + self.delete_timeout
        while True:
            pod = await self._get_pod(role)
            if pod is None or (uid and (pod.get("metadata") or {}).get("uid") != uid):
                if pod is None:
                    self._record(role, None, gone_uid=uid)
                return HostResult(True, f"pod {name} deleted and gone")
            if self.clock() >= deadline:
                return HostResult(False, f"pod {name} still exists after {self.delete_timeout}s")
            await asyncio.sleep(self.poll_interval)

    async def send(self, role: Role, text: str) -> HostResult:
        try:
            pod = await self._get_pod(role)
        except (KubeApiError, TimeoutError, OSError) as err:
            return HostResult(False, f"send {role}: reading pod: {err}")
        if pod is None:
            return HostResult(False, f"send {role}: no pod")
        facts = pod_facts(pod, self.owner.uid)
        if not facts.ours or facts.terminating or facts.ip is None or facts.finished:
            return HostResult(False, f"send {role}: pod {facts.name} cannot take input now")
        try:
            result = await self._shim_call(role, facts.ip, "send", text)
        except _shim_errors() as err:
            return HostResult(False, f"send {role}: {err}")
        ok, detail = _result_ok(result)
        return HostResult(ok, detail or "delivered")

    # -- shim ----------------------------------------------------------------------------------

    def shim_url(self, ip: str) -> str:
        host = f"[{ip}]" if ":" in ip else ip
        return f"http://{host}:{self.settings.shim_port}"

    async def _shim_call(self, role: Role, ip: str, method: str, *args: Any) -> Any:
        token = await self.token(role)
        shim = self.shim_factory(self.shim_url(ip), token, self.shim_timeout)
        # send waits for delivery to be verified, restart for the kill-verify-start cycle.
        floor = {"send": 15.0, "restart": 30.0, "stop": 30.0}.get(method, 0.0)
        try:
            return await asyncio.wait_for(
                getattr(shim, method)(*args), timeout=max(self.shim_timeout, floor) + 5.0
            )
        finally:
            await _close(shim)

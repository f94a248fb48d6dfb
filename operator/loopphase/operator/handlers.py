"""kopf handlers for LoopPhase: thin shells around the shared controller tick.

- login: kopf logs in through the kubernetes client's loading; KubeApi (the official client) is
  configured by the same loading (one credential source).
- create/resume/update: validate the spec; an invalid one gets Degraded/InvalidSpec, display
  phase Invalid and a Warning Event, and nothing else is touched.
- one daemon per LoopPhase: ``tick`` every ``spec.timing.signalInterval``. A daemon (not a
  timer) because the interval is per object; one coroutine per object, so ticks never overlap.
- an index of the agent pods (``loopphase_pods``, fed by a watch on pods labelled
  ``app.kubernetes.io/managed-by=loopphase``): the daemon hands it to ``ctx.pods`` so the tick
  reads pods from memory instead of GETting each one (``operator/pod_cache.py``).
- delete: kopf keeps its finalizer while the daemon runs anyway (kopf requires it for
  daemons/timers), so the delete handler stops every pod and verifies it is gone before the
  finalizer goes; PVCs, the ConfigMap and the Secret follow the owner by garbage collection.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import kopf
from pydantic import ValidationError

from loopphase.api.base import API_GROUP, API_VERSION, PLURAL
from loopphase.api.spec import ROLES, LoopPhaseSpec
from loopphase.controller.tick import next_tick_delay, run_tick
from loopphase.core import holds
from loopphase.metrics import record_tick
from loopphase.notify import Notifier, fold
from loopphase.operator import status_io
from loopphase.operator.approvals import from_annotations
from loopphase.operator.context import GitSource, OperatorContext, role_prompts
from loopphase.operator.events import event_for
from loopphase.operator.git_credentials import git_env
from loopphase.operator.kubeapi import KubeApi, KubeApiError, custom_ref, load_configuration
from loopphase.operator.model_cache import ModelCache
from loopphase.operator.peering import PeeringTarget, PeeringUnavailable, ensure_peering
from loopphase.operator.pod_cache import MANAGED_BY, slim_pod
from loopphase.operator.webhook_secret import SecretUrls
from loopphase.operator.webhooks import sleep_or_wake
from loopphase.runtime import k8s_objects as ko

log = logging.getLogger(__name__)
INVALID_RETRY = 30.0
ERROR_RETRY = 10.0

POD_INDEX = "loopphase_pods"  # also the daemon's kwarg name (kopf passes indices by id)

LoginFn = Callable[..., Any]


def default_login(**kwargs: Any) -> Any:
    """kopf logs in through the kubernetes client's loading (in a pod: the service account;
    elsewhere: the kubeconfig), the same loading ``KubeApi`` is configured by."""
    return kopf.login_via_client(**kwargs)


def _owner(obj: dict[str, Any]) -> ko.Owner:
    meta = obj.get("metadata") or {}
    return ko.Owner(name=meta["name"], namespace=meta["namespace"], uid=meta.get("uid", ""))


def _post(body: Any, warning: bool, reason: str, message: str) -> None:
    kopf.event(body, type="Warning" if warning else "Normal", reason=reason, message=message)


async def _report_invalid(
    api: KubeApi, obj: dict[str, Any], err: ValidationError, now: datetime,
    live: status_io.LiveObjects | None = None,
) -> bool:
    message = status_io.validation_message(err)
    meta = obj.get("metadata") or {}
    wanted = status_io.invalid_status(
        status_io.raw_status(obj), message, meta.get("generation"), now
    )
    return await status_io.write_status(api, obj, wanted, live)


async def tick(
    ctx: OperatorContext, namespace: str, name: str, body: Any, models: ModelCache | None = None
) -> float:
    """One controller tick for one LoopPhase; returns the seconds until the next one."""
    models = models if models is not None else ModelCache()
    api = ctx.require_api()
    obj = await ctx.live.current(api, namespace, name, body)
    if obj is None or (obj.get("metadata") or {}).get("deletionTimestamp"):
        return INVALID_RETRY
    meta = obj["metadata"]
    uid = str(meta.get("uid", ""))
    now = datetime.now(UTC)
    try:
        spec = models.spec(uid, obj.get("spec") or {})
    except ValidationError as err:
        await _report_invalid(api, obj, err, now, ctx.live)
        return INVALID_RETRY
    try:
        status = models.status(uid, status_io.raw_status(obj))
    except ValidationError as err:
        # Never "start over" from an unreadable status (it holds windows and the phase index).
        message = f"status unreadable, not acting: {status_io.validation_message(err, 'status')}"
        log.error("%s/%s: %s", namespace, name, message)
        _post(body, True, "InvalidStatus", message)
        return spec.timing.signal_interval
    owner = _owner(obj)
    runtime = ctx.runtime(owner, spec)
    git = GitSource(ctx.git_registry(), spec.repo.url, spec.repo.branch,
                    await git_env(api, namespace, spec, ctx.reads, credentials=ctx.git_credentials,
                                  warn=lambda reason, message: _post(body, True, reason, message),
                                  user=uid))
    await ctx.webhooks.configure(api, ctx.reads, namespace, name, uid, spec, git,
                                 warn=lambda reason, message: _post(body, True, reason, message))
    prompts = await role_prompts(api, namespace, spec, ctx.reads)
    key = f"{namespace}/{name}"
    started = time.monotonic()
    result = await run_tick(
        spec, status, runtime, git, now,
        role_prompt=lambda role: prompts.get(role, ""),
        generation=meta.get("generation"),
        default_tz=spec.time_zone or "UTC",
        namespace=namespace,
        account_holds=ctx.account_holds.others(key, now),
        approvals=from_annotations(meta, status.current.id if status.current else None),
    )
    ctx.account_holds.publish(key, holds.exported(spec, result.status, now), now)
    notifier = ctx.notifiers.get(uid)
    if notifier is None:
        notifier = ctx.notifiers[uid] = Notifier(name, SecretUrls(api, namespace).resolve)
    result.status = fold(spec, status, result.status, notifier.drain())
    for action, ok, detail in result.results:
        record = event_for(action, ok, detail)
        _post(body, record.warning, record.kind, record.message)
    written = await status_io.write_status(api, obj, models.wire(uid, result.status), ctx.live)
    record_tick(ctx.metrics, uid, status, result.status, result.actions, result.results,
                result.observations, started=now, finished=datetime.now(UTC),
                seconds=time.monotonic() - started)
    ctx.metrics.wrote("event", len(result.results))
    ctx.metrics.wrote("status", int(written))
    # Only a persisted outbox is sent (write_status raised otherwise): durable across restarts.
    notifier.submit(spec.notify, result.status.notifications.outbox, datetime.now(UTC))
    # Wake at a limit window's end rather than up to a tick later (the probe is due then).
    return next_tick_delay(spec, result.status, datetime.now(UTC))


PEERING_RETRY = 10.0


def build_registry(
    ctx: OperatorContext, *, login: LoginFn = default_login,
    client_config: Callable[[], Any] = load_configuration, peering: PeeringTarget | None = None,
) -> kopf.OperatorRegistry:
    """Our handlers. ``login`` is kopf's, ``client_config`` makes the ``kubernetes`` client's
    Configuration for ``KubeApi``. With ``peering``, a start-up handler first creates the
    peering object(s) kopf will wait for (``operator/peering.py``); None = standalone."""
    registry = kopf.OperatorRegistry()
    resource = (API_GROUP, API_VERSION, PLURAL)
    models = ModelCache()  # validated spec/status per LoopPhase, shared by its ticks

    if peering is not None:
        @kopf.on.startup(registry=registry, errors=kopf.ErrorsMode.TEMPORARY,
                         backoff=PEERING_RETRY)
        async def peering_handler(**_: Any) -> None:
            # Start-up runs before kopf's own login (and before the health endpoint serves):
            # a client of our own, for this one job.
            api = KubeApi(client_config(), timeout=ctx.api_timeout, max_workers=2)

            async def create(plural: str, namespace: str | None, body: dict[str, Any]) -> Any:
                return await api.create(custom_ref("kopf.dev", "v1", namespace, plural), body)

            try:
                await ensure_peering(create, peering)
            except PeeringUnavailable as err:
                raise kopf.TemporaryError(str(err), delay=PEERING_RETRY) from err
            finally:
                await api.close()

    @kopf.on.login(registry=registry)
    def login_handler(**kwargs: Any) -> Any:
        info = login(**kwargs)
        if info is None:
            return None
        # kopf's watches use ``info``; our calls use the kubernetes client, configured by the
        # client's own loading (the same kubeconfig / service account kopf logged in with).
        if ctx.api is None:
            ctx.api = KubeApi(client_config(), timeout=ctx.api_timeout)
        return info

    @kopf.on.startup(registry=registry)
    async def startup_handler(**_: Any) -> None:
        await ctx.webhooks.start()  # listens only when --webhook-listen is set

    @kopf.on.cleanup(registry=registry)
    async def cleanup_handler(**_: Any) -> None:
        await ctx.close()

    @kopf.on.resume(*resource, registry=registry)
    @kopf.on.create(*resource, registry=registry)
    @kopf.on.update(*resource, field="spec", registry=registry)
    async def validate_handler(
        body: kopf.Body, namespace: str, name: str, **_: Any
    ) -> None:
        try:
            LoopPhaseSpec.model_validate(dict(body.get("spec") or {}))
        except ValidationError as err:
            message = status_io.validation_message(err)
            log.warning("%s/%s: invalid spec: %s", namespace, name, message)
            _post(body, True, "InvalidSpec", message)
            api = ctx.require_api()
            obj = await status_io.read_object(api, namespace, name)
            if obj is not None:
                await _report_invalid(api, obj, err, datetime.now(UTC))
                ctx.live.invalidate(obj)

    @kopf.index("v1", "pods", id=POD_INDEX, labels=MANAGED_BY, registry=registry)
    def pod_index(
        body: kopf.Body, namespace: str, name: str, **_: Any
    ) -> dict[tuple[str, str], dict[str, Any]]:
        return {(namespace, name): slim_pod(body)}

    @kopf.daemon(*resource, id="loop", registry=registry, cancellation_timeout=60.0)
    async def loop_daemon(
        stopped: kopf.DaemonStopped, body: kopf.Body, namespace: str, name: str,
        loopphase_pods: kopf.Index[tuple[str, str], dict[str, Any]], **_: Any
    ) -> None:
        # kopf starts handlers and daemons only after every index is filled from its initial
        # LIST (processing waits for ``operator_indexed``): the index can be trusted from here.
        ctx.pods.attach(loopphase_pods)
        wake = ctx.webhooks.wake_event(str((body.get("metadata") or {}).get("uid", "")))
        while not stopped:
            try:
                delay = await tick(ctx, namespace, name, body, models)
            except (KubeApiError, TimeoutError, OSError) as err:
                log.warning("%s/%s: tick failed: %s; retrying in %ss",
                            namespace, name, err, ERROR_RETRY)
                ctx.live.invalidate(body)  # whether our write landed is unknown: GET next
                delay = ERROR_RETRY
            await sleep_or_wake(stopped, wake, delay)  # a verified push webhook wakes it early

    @kopf.on.delete(*resource, registry=registry, optional=True)
    async def delete_handler(body: kopf.Body, uid: str, **_: Any) -> None:
        meta = body.get("metadata") or {}
        owner = ko.Owner(name=meta["name"], namespace=meta["namespace"], uid=uid)
        try:
            spec = LoopPhaseSpec.model_validate(dict(body.get("spec") or {}))
        except ValidationError:
            spec = None
        runtime = ctx.runtimes.get(uid)
        if runtime is None and spec is not None:
            runtime = ctx.runtime(owner, spec)
        if runtime is None:
            # An invalid spec never created pods; whatever exists goes by garbage collection.
            return
        failures = []
        for role in ROLES:
            result = await runtime.stop(role)
            if not result.ok:
                failures.append(result.detail)
        if failures:
            raise kopf.TemporaryError("; ".join(failures), delay=5)
        ctx.forget(uid)
        models.forget(uid)
        ctx.metrics.forget(uid)
        notifier = ctx.notifiers.pop(uid, None)
        if notifier is not None:
            await notifier.close()

    return registry

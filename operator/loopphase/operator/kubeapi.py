"""The operator's Kubernetes API calls, through the official ``kubernetes`` client.

Everything outside kopf's own calls goes through ``KubeApi``: get / create / merge-patch /
delete of one object named by a ``Ref``, dispatched to the client's typed API classes
(``CoreV1Api``, ``NetworkingV1Api``, ``CustomObjectsApi``). Why a thin layer at all:

- the client is synchronous: each call runs in a dedicated, bounded ``ThreadPoolExecutor``
  (``max_workers``, the same size as the client's urllib3 connection pool), so a slow API
  server can tie up at most that many threads and never the event loop. (``kubernetes_asyncio``
  would avoid the threads, but it is a separate code base that trails the official client's
  releases; the operator's API traffic is a few calls per action and 0 per idle tick, so a
  small pool is plenty.)
- every call has a timeout: ``_request_timeout=(connect, read)`` for the client, plus a hard
  ``asyncio`` deadline over the whole call; urllib3 retries are off (the next tick retries).
- bodies and answers stay plain JSON dicts (``_preload_content=False``, decoded in the worker
  thread): the client's models would reject the partial objects the code writes and drop
  fields it does not know, and the code reads a handful of fields anyway.
- every write carries ``field_manager="loopphase-operator"`` and every request the User-Agent
  ``loopphase-operator/<version>``; patches are RFC 7386 merge patches (``_content_type``).
- errors: ``KubeApiError`` (an ``ApiException`` with a one-line ``str``: ``HTTP 403
  Forbidden: <the API's message>``, never the response headers), ``TimeoutError`` for a
  timeout, ``OSError`` for a connection failure.

Credentials come from the client's own loading (``load_configuration``: in-cluster service
account, whose token file the client re-reads as it rotates, else the kubeconfig); kopf logs
in through the same client (``kopf.login_via_client``). Tests build a ``Configuration`` for
the kmock emulator's URL.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from loopphase.api.base import clip

log = logging.getLogger(__name__)

FIELD_MANAGER = "loopphase-operator"
MERGE_PATCH = "application/merge-patch+json"
DEFAULT_WORKERS = 16
IN_CLUSTER_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


def _user_agent() -> str:
    try:
        version = metadata.version("loopphase")
    except metadata.PackageNotFoundError:
        version = "dev"
    return f"loopphase-operator/{version}"


USER_AGENT = _user_agent()


class KubeApiError(ApiException):
    """An API error answer: ``status`` (HTTP code), ``reason``, ``message`` (the API's own
    ``Status.message``). ``str()`` is one line without headers (it reaches status and Events)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(status=status, reason=reason)
        self.message = message

    @classmethod
    def from_api_exception(cls, err: ApiException) -> KubeApiError:
        body: Any = err.body
        if isinstance(body, bytes):
            body = body.decode("utf-8", "replace")
        message = str(body or "")
        try:
            payload = json.loads(message) if message else {}
        except json.JSONDecodeError:
            payload = {}
        if isinstance(payload, dict):
            message = str(payload.get("message") or message)
            reason = str(payload.get("reason") or err.reason or "")
        else:
            reason = str(err.reason or "")
        return cls(int(err.status or 0), reason, clip(message, 2000))

    def __str__(self) -> str:
        return f"HTTP {self.status} {self.reason}: {self.message}"


@dataclass(frozen=True)
class Ref:
    """One object (``name`` set) or a collection (``name`` None) of one resource.

    ``group`` "" is the core API. ``namespace`` None: cluster-scoped (custom objects only)."""

    group: str
    version: str
    plural: str
    namespace: str | None
    name: str | None = None
    subresource: str | None = None

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        sub = f"/{self.subresource}" if self.subresource else ""
        api = f"{self.group}/{self.version}" if self.group else self.version
        return f"{self.plural}.{api} {where}{self.name or ''}{sub}"


def core_ref(namespace: str, plural: str, name: str | None = None,
             subresource: str | None = None) -> Ref:
    return Ref("", "v1", plural, namespace, name, subresource)


def custom_ref(group: str, version: str, namespace: str | None, plural: str,
               name: str | None = None, subresource: str | None = None) -> Ref:
    return Ref(group, version, plural, namespace, name, subresource)


# The typed API classes' method suffix per built-in resource this operator uses.
BUILTIN_KINDS: dict[tuple[str, str], str] = {
    ("", "pods"): "pod",
    ("", "secrets"): "secret",
    ("", "configmaps"): "config_map",
    ("", "persistentvolumeclaims"): "persistent_volume_claim",
    ("", "events"): "event",
    ("networking.k8s.io", "networkpolicies"): "network_policy",
}


def load_configuration() -> k8s.Configuration:
    """The client's credential loading: in a pod the service account, else the kubeconfig.
    Raises ``kubernetes.config.ConfigException`` when neither is usable."""
    cfg = k8s.Configuration()
    try:
        k8s_config.load_incluster_config(client_configuration=cfg)
    except k8s_config.ConfigException:
        k8s_config.load_kube_config(client_configuration=cfg)
    return cfg


def load_cli_configuration(context: str | None = None) -> tuple[k8s.Configuration, str]:
    """For the CLI run by a user: the kubeconfig (``$KUBECONFIG`` or ``~/.kube/config``; the
    named ``context`` or the current one), else the in-cluster service account. Returns the
    configuration and the namespace to default to (the context's, else ``default``; in a pod,
    the pod's own). Raises ``kubernetes.config.ConfigException`` when neither is usable (the
    message says what is missing)."""
    cfg = k8s.Configuration()
    try:
        k8s_config.load_kube_config(context=context, client_configuration=cfg)
    except k8s_config.ConfigException as kube_err:
        if context is not None:
            raise
        try:
            k8s_config.load_incluster_config(client_configuration=cfg)
        except k8s_config.ConfigException:
            raise kube_err from None
        try:
            with open(IN_CLUSTER_NAMESPACE, encoding="utf-8") as file:
                return cfg, file.read().strip() or "default"
        except OSError:
            return cfg, "default"
    contexts, current = k8s_config.list_kube_config_contexts()
    chosen = next((c for c in contexts if c.get("name") == context), None) if context else current
    namespace = ((chosen or {}).get("context") or {}).get("namespace") or "default"
    return cfg, str(namespace)


def configuration_for(server: str) -> k8s.Configuration:
    """An unauthenticated configuration for ``server`` (tests against an API emulator)."""
    cfg = k8s.Configuration()
    cfg.host = server.rstrip("/")
    return cfg


class KubeApi:
    """get / create / merge-patch / delete of JSON objects, each in a bounded worker pool with
    a timeout (seconds)."""

    def __init__(self, configuration: k8s.Configuration, *, timeout: float = 10.0,
                 max_workers: int = DEFAULT_WORKERS) -> None:
        self.timeout = timeout
        configuration.retries = 0  # the next tick retries; urllib3's own retries multiply waits
        configuration.connection_pool_maxsize = max_workers
        self.server = str(configuration.host)
        self.client = k8s.ApiClient(configuration)
        self.client.user_agent = USER_AGENT
        self.core = k8s.CoreV1Api(self.client)
        self.networking = k8s.NetworkingV1Api(self.client)
        self.custom = k8s.CustomObjectsApi(self.client)
        self._pool = ThreadPoolExecutor(max_workers=max_workers,
                                        thread_name_prefix="loopphase-kubeapi")

    async def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.client.close()

    # -- dispatch ------------------------------------------------------------------------------

    def _method(self, verb: str, ref: Ref) -> tuple[Callable[..., Any], list[Any]]:
        """The typed client method for ``verb`` on ``ref`` and its leading positional args."""
        kind = BUILTIN_KINDS.get((ref.group, ref.plural))
        sub = f"_{ref.subresource}" if ref.subresource else ""
        if kind is not None:
            api: Any = self.networking if ref.group == "networking.k8s.io" else self.core
            name = {"get": "read", "create": "create", "patch": "patch",
                    "delete": "delete"}[verb]
            fn = getattr(api, f"{name}_namespaced_{kind}{sub}")
            return fn, [ref.name, ref.namespace] if ref.name is not None else [ref.namespace]
        if not ref.group:
            raise ValueError(f"no client method for core resource {ref.plural!r}")
        scope = "namespaced" if ref.namespace is not None else "cluster"
        fn = getattr(self.custom, f"{verb}_{scope}_custom_object{sub}")
        args: list[Any] = [ref.group, ref.version]
        if ref.namespace is not None:
            args.append(ref.namespace)
        args.append(ref.plural)
        if ref.name is not None:
            args.append(ref.name)
        return fn, args

    async def _call(self, what: str, fn: Callable[..., Any], *args: Any,
                    **kwargs: Any) -> dict[str, Any]:
        """Run one client call in the pool; the decoded JSON answer."""
        connect = min(5.0, self.timeout)
        call = functools.partial(_run, fn, *args, _preload_content=False,
                                 _request_timeout=(connect, self.timeout), **kwargs)
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(loop.run_in_executor(self._pool, call),
                                          timeout=self.timeout + connect + 1.0)
        except TimeoutError as err:
            raise TimeoutError(f"{what}: no answer within {self.timeout}s") from err
        except urllib3.exceptions.HTTPError as err:
            cause = err.reason if isinstance(err, urllib3.exceptions.MaxRetryError) else err
            if isinstance(cause, urllib3.exceptions.TimeoutError):
                raise TimeoutError(f"{what}: no answer within {self.timeout}s") from err
            raise OSError(f"{what}: {cause}") from err

    # -- verbs ---------------------------------------------------------------------------------

    async def get(self, ref: Ref) -> dict[str, Any] | None:
        """The object, or None when it does not exist (404)."""
        fn, args = self._method("get", ref)
        try:
            return await self._call(f"GET {ref}", fn, *args)
        except KubeApiError as err:
            if err.status == 404:
                return None
            raise

    async def create(self, ref: Ref, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body`` to the collection ``ref`` (its ``name`` is ignored)."""
        collection = Ref(ref.group, ref.version, ref.plural, ref.namespace)
        fn, args = self._method("create", collection)
        return await self._call(f"POST {collection}", fn, *args, body,
                                field_manager=FIELD_MANAGER)

    async def merge_patch(self, ref: Ref, body: dict[str, Any]) -> dict[str, Any]:
        fn, args = self._method("patch", ref)
        return await self._call(f"PATCH {ref}", fn, *args, body, field_manager=FIELD_MANAGER,
                                _content_type=MERGE_PATCH)

    async def delete(self, ref: Ref) -> bool:
        """True when a deletion was requested, False when the object was already gone."""
        fn, args = self._method("delete", ref)
        try:
            await self._call(f"DELETE {ref}", fn, *args)
        except KubeApiError as err:
            if err.status == 404:
                return False
            raise
        return True


def _run(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
    """In a worker thread: the call, its body read and decoded, the connection released."""
    try:
        resp = fn(*args, **kwargs)
    except ApiException as err:
        raise KubeApiError.from_api_exception(err) from None
    try:
        raw = resp.data
    finally:
        resp.release_conn()
    if not raw:
        return {}
    try:
        payload = json.loads(raw)
    except json.JSONDecodeError:
        return {"message": clip(raw.decode("utf-8", "replace"), 500)}
    return payload if isinstance(payload, dict) else {"message": clip(str(payload), 500)}


def merge_patch_diff(old: Any, new: Any) -> Any:
    """The RFC 7386 merge patch turning ``old`` into ``new`` (None = no change needed).

    Keys present in ``old`` and absent from ``new`` become ``null`` (deleted); lists and scalars
    are replaced whole. A plain merge of ``new`` would silently keep every removed key.
    """
    if not isinstance(old, dict) or not isinstance(new, dict):
        return None if old == new else new
    patch: dict[str, Any] = {}
    for key in old.keys() - new.keys():
        patch[key] = None
    for key, value in new.items():
        if key not in old:
            patch[key] = value
            continue
        if isinstance(value, dict) and isinstance(old[key], dict):
            sub = merge_patch_diff(old[key], value)
            if sub is not None and sub != {}:
                patch[key] = sub
        elif old[key] != value:
            patch[key] = value
    return patch or None

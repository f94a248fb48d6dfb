"""A small async JSON client for the few Kubernetes API calls LoopPhase makes.

Why not the ``kubernetes`` package: it is synchronous (every call would need a worker thread)
and its low-level API changed shape between the versions the project supports (29 → 37:
``call_api`` got a new signature with the openapi-generator 7 rewrite), while we only need
get / create / merge-patch / delete of plain JSON objects. This client is ~150 lines on aiohttp
(already a dependency), async with a hard per-request timeout, and it takes its credentials from
the same ``kopf.ConnectionInfo`` kopf logs in with, so the operator has exactly one source of
credentials; on 401 it asks the login function again once (service-account tokens rotate).
Against the kmock emulator in tests it needs nothing but the emulator's URL.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import ssl
import tempfile
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import aiohttp

log = logging.getLogger(__name__)

MERGE_PATCH = "application/merge-patch+json"


class ConnectionInfoLike(Protocol):
    """The fields of ``kopf.ConnectionInfo`` this client uses (duck-typed: no kopf import)."""

    server: str
    ca_path: str | None
    ca_data: bytes | None
    insecure: bool | None
    username: str | None
    password: str | None
    scheme: str | None
    token: str | None
    certificate_path: str | None
    certificate_data: bytes | None
    private_key_path: str | None
    private_key_data: bytes | None


class KubeApiError(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"HTTP {status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


def core_path(namespace: str, plural: str, name: str | None = None) -> str:
    base = f"/api/v1/namespaces/{namespace}/{plural}"
    return base if name is None else f"{base}/{name}"


def custom_path(
    group: str, version: str, namespace: str, plural: str, name: str | None = None,
    subresource: str | None = None,
) -> str:
    path = f"/apis/{group}/{version}/namespaces/{namespace}/{plural}"
    if name is not None:
        path += f"/{name}"
        if subresource:
            path += f"/{subresource}"
    return path


def _ssl_context(info: ConnectionInfoLike) -> ssl.SSLContext | bool:
    if not info.server.startswith("https"):
        return False
    ctx = ssl.create_default_context(
        cafile=info.ca_path,
        cadata=info.ca_data.decode() if info.ca_data else None,
    )
    if info.insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    cert_path, key_path = info.certificate_path, info.private_key_path
    tmpfiles: list[str] = []
    try:
        if info.certificate_data is not None:
            cert_path = _tmpfile(info.certificate_data, tmpfiles)
        if info.private_key_data is not None:
            key_path = _tmpfile(info.private_key_data, tmpfiles)
        if cert_path:
            ctx.load_cert_chain(certfile=cert_path, keyfile=key_path)
    finally:
        for path in tmpfiles:
            os.unlink(path)
    return ctx


def _tmpfile(data: bytes, created: list[str]) -> str:
    fd, path = tempfile.mkstemp(prefix="loopphase-", suffix=".pem")
    created.append(path)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return path


def _auth_headers(info: ConnectionInfoLike) -> dict[str, str]:
    if info.token:
        return {"Authorization": f"{info.scheme or 'Bearer'} {info.token}"}
    if info.username and info.password:
        raw = base64.b64encode(f"{info.username}:{info.password}".encode()).decode()
        return {"Authorization": f"Basic {raw}"}
    return {}


class KubeApi:
    """Async get/create/merge-patch/delete of JSON objects, each with a hard timeout."""

    def __init__(
        self,
        info: ConnectionInfoLike,
        *,
        timeout: float = 10.0,
        relogin: Callable[[], Awaitable[ConnectionInfoLike]] | None = None,
    ) -> None:
        self.timeout = timeout
        self._relogin = relogin
        self._session: aiohttp.ClientSession | None = None
        self._apply(info)

    def _apply(self, info: ConnectionInfoLike) -> None:
        self.server = info.server.rstrip("/")
        self._headers = {"Accept": "application/json", **_auth_headers(info)}
        self._ssl = _ssl_context(info)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                connector=aiohttp.TCPConnector(ssl=self._ssl, limit=32),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> dict[str, Any]:
        """One call; raises KubeApiError on a non-2xx answer, TimeoutError on a timeout."""
        status, payload = await self._once(method, path, body, content_type)
        if status == 401 and self._relogin is not None:
            log.info("kubernetes API said 401; logging in again")
            info = await asyncio.wait_for(self._relogin(), timeout=self.timeout)
            await self.close()
            self._apply(info)
            status, payload = await self._once(method, path, body, content_type)
        if status >= 400:
            raise KubeApiError(
                status, str(payload.get("reason", "")), str(payload.get("message", payload))
            )
        return payload

    async def _once(
        self, method: str, path: str, body: Any, content_type: str
    ) -> tuple[int, dict[str, Any]]:
        headers = dict(self._headers)
        data = None
        if body is not None:
            headers["Content-Type"] = content_type
            data = json.dumps(body)
        try:
            async with self._client().request(
                method, self.server + path, data=data, headers=headers
            ) as resp:
                text = await resp.text()
                status = resp.status
        except TimeoutError as err:
            raise TimeoutError(f"{method} {path}: no answer within {self.timeout}s") from err
        try:
            payload = json.loads(text) if text else {}
        except json.JSONDecodeError:
            payload = {"message": text[:500]}
        if not isinstance(payload, dict):
            payload = {"message": str(payload)[:500]}
        return status, payload

    # -- verbs ---------------------------------------------------------------------------------

    async def get(self, path: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist (404)."""
        try:
            return await self.request("GET", path)
        except KubeApiError as err:
            if err.status == 404:
                return None
            raise

    async def create(self, collection_path: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self.request("POST", collection_path, body)

    async def merge_patch(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self.request("PATCH", path, body, MERGE_PATCH)

    async def delete(self, path: str) -> bool:
        """True when a deletion was requested, False when the object was already gone."""
        try:
            await self.request("DELETE", path)
        except KubeApiError as err:
            if err.status == 404:
                return False
            raise
        return True


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

"""Read the LoopPhase, and write its status only when it changed, conflict-checked.

Reading: each tick starts from kopf's live ``body`` (kept current by kopf's watch) instead of a
GET (``LiveObjects``). Until the watch has delivered the tick's own last status write, the
object returned by that PATCH is used instead, so a tick never decides from a status older
than the one it wrote. After a conflict that dropped a write, a failed tick, or without a body,
the object is read with a GET. Writes always carry the resourceVersion of the object the tick
decided from, so a stale view can only cause a 409 (re-read, as before), never a lost update.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from loopphase.api.base import API_GROUP, API_VERSION, PLURAL, clip
from loopphase.api.errors import format_errors
from loopphase.api.spec import LoopPhaseSpec
from loopphase.api.status import Condition, LoopPhaseStatus
from loopphase.operator.kubeapi import KubeApi, KubeApiError, custom_ref, merge_patch_diff

log = logging.getLogger(__name__)
KOPF_KEY = "kopf"  # declared in the CRD; never touched by the controller
CONFLICT_RETRIES = 2


def object_path(namespace: str, name: str, subresource: str | None = None) -> str:
    return custom_ref(API_GROUP, API_VERSION, namespace, PLURAL, name, subresource)


async def read_object(api: KubeApi, namespace: str, name: str) -> dict[str, Any] | None:
    return await api.get(object_path(namespace, name))


def raw_status(obj: dict[str, Any]) -> dict[str, Any]:
    status = obj.get("status") or {}
    return {k: v for k, v in status.items() if k != KOPF_KEY}


def _key(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta.get('name')}/{meta.get('uid', '')}"


@dataclass
class LiveObjects:
    """The LoopPhase each tick decides from: kopf's live body, or our own last write."""

    _written: dict[str, tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=dict)
    _stale: set[str] = field(default_factory=set)
    gets: int = 0  # how many ticks had to GET (for tests and diagnosis)

    async def current(
        self, api: KubeApi, namespace: str, name: str, body: Mapping[str, Any] | None
    ) -> dict[str, Any] | None:
        raw = dict(body) if body is not None else None
        if raw is None or not raw.get("metadata"):
            self.gets += 1
            return await read_object(api, namespace, name)
        key = _key(raw)
        if key in self._stale:
            self._stale.discard(key)
            self._written.pop(key, None)
            self.gets += 1
            return await read_object(api, namespace, name)
        memo = self._written.get(key)
        if memo is not None:
            based_on, response = memo
            if raw_status(raw) == based_on:  # the watch has not delivered our write yet
                return response
            del self._written[key]
        return raw

    def wrote(self, obj: Mapping[str, Any], based_on: dict[str, Any], response: Any) -> None:
        key = _key(obj)
        if isinstance(response, dict) and isinstance(response.get("metadata"), dict) \
                and "status" in response:
            self._written[key] = (based_on, response)
        else:  # the server's answer is not the object: read it next time
            self.invalidate(obj)

    def invalidate(self, obj: Mapping[str, Any]) -> None:
        self._stale.add(_key(obj))

    def forget(self, namespace: str, name: str) -> None:
        prefix = f"{namespace}/{name}/"
        for key in [k for k in (*self._written, *self._stale) if k.startswith(prefix)]:
            self._written.pop(key, None)
            self._stale.discard(key)


async def write_status(
    api: KubeApi, obj: dict[str, Any], new: LoopPhaseStatus | dict[str, Any],
    live: LiveObjects | None = None,
) -> bool:
    """Patch ``.status`` to ``new`` if it differs from what ``obj`` holds. Returns True if written.

    The merge patch carries ``metadata.resourceVersion`` of the object we read, so the API
    server rejects it with 409 when anyone changed the object since (optimistic concurrency);
    the caller re-reads on the next tick. Keys that disappeared are sent as null, so nothing
    stale survives a merge.
    """
    meta = obj.get("metadata") or {}
    old = raw_status(obj)
    wanted = new.to_wire() if isinstance(new, LoopPhaseStatus) else new
    if old == wanted:  # the usual tick: one C-level comparison instead of a recursive diff
        return False
    diff = merge_patch_diff(old, wanted)
    if not diff:
        return False
    body: dict[str, Any] = {"status": diff}
    if meta.get("resourceVersion"):
        body["metadata"] = {"resourceVersion": meta["resourceVersion"]}
    path = object_path(meta["namespace"], meta["name"], "status")
    for _ in range(CONFLICT_RETRIES + 1):
        try:
            response = await api.merge_patch(path, body)
        except KubeApiError as err:
            if err.status != 409:
                if live is not None:
                    live.invalidate(obj)
                raise
        else:
            if live is not None:
                live.wrote(obj, old, response)
            return True
        # 409: the object changed since we read it. This tick's actions already happened, so
        # its record must not be dropped just because kopf (or anyone) touched metadata or spec
        # meanwhile: re-read, and if the STATUS we based the diff on is unchanged, send the same
        # diff against the fresh resourceVersion. If the status itself changed, another writer
        # won: drop ours and let the next tick re-decide from the re-read state.
        fresh = await read_object(api, meta["namespace"], meta["name"])
        if fresh is None or raw_status(fresh) != old:
            if live is not None:
                live.invalidate(obj)
            log.info("status of %s/%s changed meanwhile (409); re-deciding next tick",
                     meta["namespace"], meta["name"])
            return False
        version = (fresh.get("metadata") or {}).get("resourceVersion")
        if version:
            body["metadata"] = {"resourceVersion": version}
    if live is not None:
        live.invalidate(obj)
    log.warning("status of %s/%s: %d conflicts in a row; re-deciding next tick",
                meta["namespace"], meta["name"], CONFLICT_RETRIES + 1)
    return False


def invalid_status(
    current: dict[str, Any], message: str, generation: int | None, now: datetime
) -> dict[str, Any]:
    """The status for an invalid spec: Degraded/InvalidSpec + display phase Invalid; every
    other field (windows, counters, cursors) is kept as it was."""
    try:
        status = LoopPhaseStatus.model_validate(current)
    except ValueError:
        status = LoopPhaseStatus()
    existing = status.condition("Degraded")
    if existing is None or existing.status != "True" or existing.reason != "InvalidSpec" \
            or existing.message != message:
        keep = [c for c in status.conditions if c.type != "Degraded"]
        transition = existing.last_transition_time if existing and existing.status == "True" \
            else now
        keep.append(Condition(type="Degraded", status="True", reason="InvalidSpec",
                              message=message, last_transition_time=transition,
                              observed_generation=generation))
        status.conditions = keep
    status.phase = "Invalid"
    status.message = message
    if generation is not None:
        status.observed_generation = generation
    wire = status.to_wire()
    return wire


def validation_message(err: Exception, root: str = "spec") -> str:
    """pydantic errors as ``spec.<wire path>: message`` (``loopphase.api.errors``: the same
    form ``loopphase validate`` prints), joined with "; " and cut with an ellipsis."""
    if not isinstance(err, ValidationError):
        return str(err)
    model = LoopPhaseSpec if root == "spec" else LoopPhaseStatus
    return clip("; ".join(format_errors(err, root, model)), 2000)

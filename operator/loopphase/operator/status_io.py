"""Read the LoopPhase fresh, and write its status only when it changed, conflict-checked."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from loopphase.api.base import API_GROUP, API_VERSION, PLURAL
from loopphase.api.status import Condition, LoopPhaseStatus
from loopphase.operator.kubeapi import KubeApi, KubeApiError, custom_path, merge_patch_diff

log = logging.getLogger(__name__)
KOPF_KEY = "kopf"  # declared in the CRD; never touched by the controller
CONFLICT_RETRIES = 2


def object_path(namespace: str, name: str, subresource: str | None = None) -> str:
    return custom_path(API_GROUP, API_VERSION, namespace, PLURAL, name, subresource)


async def read_object(api: KubeApi, namespace: str, name: str) -> dict[str, Any] | None:
    return await api.get(object_path(namespace, name))


def raw_status(obj: dict[str, Any]) -> dict[str, Any]:
    status = obj.get("status") or {}
    return {k: v for k, v in status.items() if k != KOPF_KEY}


async def write_status(
    api: KubeApi, obj: dict[str, Any], new: LoopPhaseStatus | dict[str, Any]
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
    diff = merge_patch_diff(old, wanted)
    if not diff:
        return False
    body: dict[str, Any] = {"status": diff}
    if meta.get("resourceVersion"):
        body["metadata"] = {"resourceVersion": meta["resourceVersion"]}
    path = object_path(meta["namespace"], meta["name"], "status")
    for _ in range(CONFLICT_RETRIES + 1):
        try:
            await api.merge_patch(path, body)
            return True
        except KubeApiError as err:
            if err.status != 409:
                raise
        # 409: the object changed since we read it. This tick's actions already happened, so
        # its record must not be dropped just because kopf (or anyone) touched metadata or spec
        # meanwhile: re-read, and if the STATUS we based the diff on is unchanged, send the same
        # diff against the fresh resourceVersion. If the status itself changed, another writer
        # won: drop ours and let the next tick re-decide from the re-read state.
        fresh = await read_object(api, meta["namespace"], meta["name"])
        if fresh is None or raw_status(fresh) != old:
            log.info("status of %s/%s changed meanwhile (409); re-deciding next tick",
                     meta["namespace"], meta["name"])
            return False
        version = (fresh.get("metadata") or {}).get("resourceVersion")
        if version:
            body["metadata"] = {"resourceVersion": version}
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


def validation_message(err: Exception) -> str:
    """pydantic errors as ``spec.<camelCase loc>: message`` lines (the field is named)."""
    errors = getattr(err, "errors", None)
    if not callable(errors):
        return str(err)
    parts = []
    for item in errors():
        loc = ".".join(str(p) for p in item.get("loc", ()))
        where = f"spec.{loc}" if loc else "spec"
        parts.append(f"{where}: {item.get('msg', '')}")
    return "; ".join(parts)[:2000]

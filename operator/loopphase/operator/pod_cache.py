"""A watch-fed view of the agent pods, so the per-tick ``observe`` reads pods from memory.

The pods come from a kopf index (``handlers.build_registry`` registers ``loopphase_pods`` on the
pods labelled ``app.kubernetes.io/managed-by=loopphase``), keyed by ``(namespace, name)``, each
value a slim copy of the pod (:func:`slim_pod`: only what ``pod_facts`` reads).

Semantics of :meth:`PodCache.lookup`:

* Until an index is attached, nothing is known: the caller GETs (the fallback).
  kopf fills every index from the initial LIST before it processes any LoopPhase (handlers and
  daemons wait for ``operator_indexed``; kopf ``_core/reactor/processing.py``), and the daemon
  attaches the index it receives as a kwarg, so an attached index has been populated.
* A pod absent from the index is absent; a pod in it is read from it (``deletionTimestamp`` =
  terminating, podIP and phase as last watched).
* After an authoritative answer for a pod (our own create, a GET during stop/restart/adopt, a
  GET that disagreed with the index) the index is not trusted for that pod until the watch
  shows the same state (same uid present, or that uid gone): until then the caller GETs. This
  covers the watch lagging behind our own create/delete (no "absent" right after we created a
  pod, no stale "present" right after we deleted one).
* Each cached pod is re-verified with one GET every ``verify_every`` seconds: kopf does not drop
  index entries of objects deleted while its watch was disconnected (a re-LIST after 410 Gone
  only adds), so a stale "present" lasts at most that long.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from loopphase.runtime import k8s_objects as ko

PodKey = tuple[str, str]
VERIFY_EVERY = 300.0
MANAGED_BY = {"app.kubernetes.io/managed-by": "loopphase"}
MANAGED_BY_SELECTOR = ",".join(f"{k}={v}" for k, v in MANAGED_BY.items())


def slim_pod(body: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a pod that ``runtime.kubernetes.pod_facts`` reads (small in memory)."""
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    annotations = meta.get("annotations") or {}
    slim_meta: dict[str, Any] = {
        key: meta[key] for key in ("name", "namespace", "uid", "creationTimestamp",
                                   "deletionTimestamp") if meta.get(key)
    }
    slim_meta["ownerReferences"] = [
        {"uid": ref.get("uid"), "controller": ref.get("controller")}
        for ref in meta.get("ownerReferences") or []
    ]
    if ko.ANN_PHASE_INDEX in annotations:
        slim_meta["annotations"] = {ko.ANN_PHASE_INDEX: annotations[ko.ANN_PHASE_INDEX]}
    slim_status: dict[str, Any] = {
        key: status[key] for key in ("phase", "podIP", "reason", "message") if status.get(key)
    }
    slim_status["containerStatuses"] = [
        {"restartCount": c.get("restartCount") or 0, **_waiting(c)}
        for c in status.get("containerStatuses") or []
    ]
    if slim_status.get("phase", "Pending") == "Pending":  # why it is not running yet
        slim_status["initContainerStatuses"] = [
            _waiting(c) for c in status.get("initContainerStatuses") or [] if _waiting(c)
        ]
        slim_status["conditions"] = [
            {k: c[k] for k in ("type", "status", "reason", "message") if k in c}
            for c in status.get("conditions") or [] if c.get("status") == "False"
        ]
    return {"metadata": slim_meta, "status": slim_status}


def _waiting(container: Mapping[str, Any]) -> dict[str, Any]:
    """A container status's ``state.waiting`` (reason/message), or nothing."""
    waiting = (container.get("state") or {}).get("waiting")
    if not isinstance(waiting, dict):
        return {}
    return {"state": {"waiting": {k: waiting[k] for k in ("reason", "message") if k in waiting}}}


def _uid(pod: Mapping[str, Any] | None) -> str | None:
    return None if pod is None else (pod.get("metadata") or {}).get("uid") or None


def _terminating(pod: Mapping[str, Any] | None) -> bool:
    return pod is not None and bool((pod.get("metadata") or {}).get("deletionTimestamp"))


class Ambiguous(LookupError):
    """The index holds more than one incarnation of the pod: ask the API."""


@dataclasses.dataclass(frozen=True)
class Expectation:
    """What an authoritative read or our own write said about one pod."""

    present: bool
    uid: str | None = None  # present: that uid (None: any, e.g. an emulator without uids)
    terminating: bool = False  # present: already marked for deletion
    gone_uid: str | None = None  # absent: that uid must be gone (None: no pod at all)

    def agrees(self, cached: Mapping[str, Any] | None) -> bool:
        if not self.present:
            return cached is None or (self.gone_uid is not None and _uid(cached) != self.gone_uid)
        if cached is None:
            return False
        if self.uid is not None and _uid(cached) != self.uid:
            return False
        return _terminating(cached) or not self.terminating


@dataclasses.dataclass
class PodCache:
    verify_every: float = VERIFY_EVERY
    clock: Callable[[], float] = time.monotonic
    _index: Mapping[Any, Any] | None = None
    _expected: dict[PodKey, Expectation] = dataclasses.field(default_factory=dict)
    _verified: dict[PodKey, float] = dataclasses.field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return self._index is not None

    def attach(self, index: Mapping[Any, Any]) -> None:
        """Use this (populated) kopf index from now on; the same object on every call."""
        self._index = index

    def cached(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The pod as last watched, or None. Raises :class:`Ambiguous` when the index holds
        two incarnations (kopf keys its stores by uid: an old pod's DELETED and its successor's
        ADDED are processed by different workers and may land in either order)."""
        if self._index is None:
            return None
        store = self._index.get((namespace, name))
        values = [dict(value) for value in store] if store is not None else []
        if len(values) > 1:
            # A value without a uid is an emulator artefact (kmock assigns no uids; the test
            # kubelets add one later, which kopf indexes as a second object): real pods always
            # have one from creation.
            values = [value for value in values if _uid(value)] or values[-1:]
        if len(values) > 1:
            raise Ambiguous(f"{namespace}/{name}: {len(values)} incarnations in the pod index")
        return values[0] if values else None

    def lookup(self, namespace: str, name: str) -> tuple[bool, dict[str, Any] | None]:
        """``(True, pod or None)`` when the cache answers; ``(False, None)``: GET it."""
        if self._index is None:
            return False, None
        key = (namespace, name)
        try:
            cached = self.cached(namespace, name)
        except Ambiguous:
            return False, None
        expected = self._expected.get(key)
        if expected is not None:
            if not expected.agrees(cached):
                return False, None
            del self._expected[key]
        if cached is None:
            self._verified.pop(key, None)
            return True, None
        now = self.clock()
        if now - self._verified.setdefault(key, now) >= self.verify_every:
            return False, None
        return True, cached

    def record(self, namespace: str, name: str, pod: Mapping[str, Any] | None,
               *, gone_uid: str | None = None) -> None:
        """An authoritative state of the pod (a GET, our create, a verified deletion)."""
        if self._index is None:
            return
        key = (namespace, name)
        ambiguous = False
        try:
            cached = self.cached(namespace, name)
        except Ambiguous:
            cached, ambiguous = None, True
        if pod is None:
            self._verified.pop(key, None)
            expected = Expectation(present=False, gone_uid=gone_uid or _uid(cached))
        else:
            self._verified[key] = self.clock()
            expected = Expectation(present=True, uid=_uid(pod), terminating=_terminating(pod))
        if not ambiguous and expected.agrees(cached):
            self._expected.pop(key, None)
        else:
            self._expected[key] = expected

    def pending(self, namespace: str, name: str) -> Expectation | None:
        return self._expected.get((namespace, name))

    def forget(self, namespace: str, names: Iterable[str]) -> None:
        for name in names:
            self._expected.pop((namespace, name), None)
            self._verified.pop((namespace, name), None)

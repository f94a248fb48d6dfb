"""The operator's own kopf peering object(s), created at start-up.

kopf with mandatory peering (our default: two replicas must never act at once) stays paused
until it sees the peering object it was told to use, and says so only at DEBUG. Nothing else
creates that object for a namespaced operator (``loopphase operator -n NS``), and a first
``kubectl apply`` of a CRD together with an object of its kind fails. So the operator creates
what it needs before kopf starts watching:

- cluster-wide: the ``ClusterKopfPeering`` named ``--peering`` (default ``loopphase``);
- namespaced (``-n NS``, repeatable): a ``KopfPeering`` of that name in each listed namespace
  (globs cannot be created: those namespaces need the object from their owner; logged).

An existing object (409) is fine. A missing peering CRD (404) or a refusal (403) is logged as
one ERROR line in a condition-like form (``PeeringUnavailable: <why>; fix: <what to run>``) and
raised as ``PeeringUnavailable``: the start-up handler turns it into a retry, so the operator
keeps its health endpoint down (readiness and liveness fail) instead of idling silently.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

GROUP, VERSION = "kopf.dev", "v1"
CRDS_FIX = ("kubectl apply -k manifests/crds && kubectl wait --for condition=established "
            "crd/clusterkopfpeerings.kopf.dev crd/kopfpeerings.kopf.dev")
GLOB_CHARS = frozenset("*?[]!")


class PeeringUnavailable(Exception):
    """The peering object cannot be made: the message names the cause and the fix."""


# create(plural, namespace or None, body): POST one kopf.dev/v1 object; an API error is raised
# as an exception carrying ``.status`` and ``.message`` (``loopphase.operator.kubeapi``).
Creator = Callable[[str, str | None, dict[str, Any]], Awaitable[Any]]


@dataclass(frozen=True)
class PeeringTarget:
    """Which peering objects this operator uses: ``namespaces`` empty means cluster-wide."""

    name: str
    namespaces: tuple[str, ...] = ()

    @property
    def clusterwide(self) -> bool:
        return not self.namespaces

    def objects(self) -> list[tuple[str, str | None, dict[str, Any]]]:
        """(plural, namespace or None, body) for each object to create; globs are skipped."""
        if self.clusterwide:
            return [("clusterkopfpeerings", None, {
                "apiVersion": f"{GROUP}/{VERSION}", "kind": "ClusterKopfPeering",
                "metadata": {"name": self.name}})]
        return [("kopfpeerings", ns, {
                    "apiVersion": f"{GROUP}/{VERSION}", "kind": "KopfPeering",
                    "metadata": {"name": self.name, "namespace": ns}})
                for ns in self.namespaces if not GLOB_CHARS & set(ns)]

    def globs(self) -> list[str]:
        return [ns for ns in self.namespaces if GLOB_CHARS & set(ns)]


def _where(namespace: str | None) -> str:
    return f"in namespace {namespace!r}" if namespace else "cluster-wide"


async def ensure_peering(create: Creator, target: PeeringTarget) -> list[str]:
    """Create the target's peering objects; returns the ones created (existing ones are fine).

    Raises PeeringUnavailable (after logging it at ERROR) when the CRD is missing or the API
    refuses; any other API error propagates."""
    created: list[str] = []
    for glob in target.globs():
        log.warning("PeeringNotCreated: namespace pattern %r: create a KopfPeering %r in each "
                    "namespace it matches (kopf stays paused in a namespace without one)",
                    glob, target.name)
    for plural, namespace, body in target.objects():
        kind = body["kind"]
        what = f"{kind} {target.name!r} {_where(namespace)}"
        try:
            await create(plural, namespace, body)
        except Exception as err:
            status = getattr(err, "status", None)
            if status == 409:
                log.info("peering: %s exists", what)
                continue
            if status == 404:
                message = (f"PeeringUnavailable: cannot create {what}: the kopf.dev peering "
                           f"CRDs are not installed (or not established yet); the operator "
                           f"acts on nothing until they are; fix: {CRDS_FIX}")
            elif status == 403:
                message = (f"PeeringUnavailable: cannot create {what}: forbidden "
                           f"({getattr(err, 'message', err)}); fix: grant create on "
                           f"kopf.dev {plural} (manifests/base/rbac.yaml) or create the object")
            else:
                raise
            log.error("%s", message)
            raise PeeringUnavailable(message) from err
        log.info("peering: created %s", what)
        created.append(what)
    return created

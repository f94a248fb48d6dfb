"""kopf settings for the LoopPhase operator.

kopf's bookkeeping (handler progress and the last-handled spec) lives in annotations under the
``loopphase.dev/`` prefix, never in ``.status``: the CRD's structural schema would prune
undeclared status fields, and the status is the controller's own record. (The generated CRD
also declares ``status.kopf`` with preserved unknown fields, belt and braces.)
"""

from __future__ import annotations

import kopf

from loopphase.operator.pod_cache import MANAGED_BY_SELECTOR

PREFIX = "loopphase.dev"
FINALIZER = f"{PREFIX}/finalizer"
PEERING_NAME = "loopphase"


def configure(
    settings: kopf.OperatorSettings,
    *,
    standalone: bool,
    peering_name: str = PEERING_NAME,
    priority: int = 0,
    peering_lifetime: int = 60,
    api_timeout: float = 30.0,
) -> kopf.OperatorSettings:
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=PREFIX, key="last-handled-configuration"
    )
    settings.persistence.finalizer = FINALIZER
    # Peering: a second replica stays paused while the first is alive (kopf.dev peering CRDs,
    # installed by manifests/). Mandatory unless --standalone, so a missing peering object is
    # an error rather than two replicas acting at once. Replicas need distinct priorities: kopf
    # pauses EVERY operator when two live peers share one (nobody would act), and the highest
    # live priority acts; ``main`` draws a random one per process unless told.
    settings.peering.name = peering_name
    settings.peering.priority = priority
    settings.peering.standalone = standalone
    settings.peering.mandatory = not standalone
    # How long a replica's record counts as alive without a keep-alive: a replacement after a
    # crash waits up to this long behind the dead one's record (a graceful exit removes its
    # record at once). Keep-alives go 5-10 s before it expires (one PATCH each).
    settings.peering.lifetime = peering_lifetime
    settings.peering.stealth = True  # no DEBUG line per keep-alive; pauses/resumes still log
    settings.posting.enabled = True
    settings.posting.reporting_component = "loopphase-operator"
    # Every API call kopf makes has a timeout; watches reconnect rather than hang.
    settings.networking.request_timeout = api_timeout
    settings.networking.connect_timeout = min(10.0, api_timeout)
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    # The pod index watches only our agent pods (server-side filter; the index also filters
    # client-side, e.g. for an API emulator that ignores selectors).
    settings.watching.label_selectors["v1", "pods"] = MANAGED_BY_SELECTOR
    return settings

"""``loopphase operator``: run the LoopPhase operator (kopf) cluster-wide or for namespaces."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import tempfile
from pathlib import Path

import kopf

from loopphase.cli import plain
from loopphase.metrics import serve
from loopphase.operator.context import OperatorContext
from loopphase.operator.handlers import build_registry
from loopphase.operator.peering import PeeringTarget
from loopphase.operator.settings import PEERING_NAME, configure
from loopphase.operator.webhooks import DEFAULT_LISTEN, OperatorWebhooks
from loopphase.outbound import install_log_scrubbing
from loopphase.runtime.k8s_objects import PodSettings
from loopphase.webhook import parse_listen


def parse_args(argv: list[str]) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="loopphase operator", description=plain(__doc__))
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", action="append", default=[],
                       help="watch this namespace (repeatable; globs allowed)")
    scope.add_argument("-A", "--all-namespaces", action="store_true",
                       help="watch every namespace (the default when no --namespace is given)")
    parser.add_argument("--standalone", action="store_true",
                        help="no peering: for tests and single-replica dev runs only")
    parser.add_argument("--peering", default=PEERING_NAME, help="kopf peering object name")
    parser.add_argument("--priority", type=int, default=None,
                        help="peering priority (the highest live replica acts; default: random "
                             "per process, so two replicas never tie, which would pause both)")
    parser.add_argument("--peering-lifetime", type=int, default=60,
                        help="seconds a replica's peering record counts as alive without a "
                             "keep-alive (kopf's peering.lifetime; keep-alives go 5-10 s "
                             "earlier). A replacement after a crash waits up to this long "
                             "behind the dead replica's record; the Deployment (replicas: 1) "
                             "passes 20")
    parser.add_argument("--liveness", default=None,
                        help="kopf liveness endpoint, e.g. http://0.0.0.0:8080/healthz")
    parser.add_argument("--agent-image", default=env("LOOPPHASE_AGENT_IMAGE", "loopphase-agent:dev"),
                        help="image of the agent pods (default $LOOPPHASE_AGENT_IMAGE, else loopphase-agent:dev)")
    parser.add_argument("--image-pull-policy", default=env("LOOPPHASE_IMAGE_PULL_POLICY", "IfNotPresent"),
                        help="imagePullPolicy of the agent pods (default IfNotPresent)")
    parser.add_argument("--shim-port", type=int, default=int(env("LOOPPHASE_SHIM_PORT", "8790")),
                        help="port of the shims' HTTP API in the pods (default 8790)")
    parser.add_argument("--storage-size", default=env("LOOPPHASE_STORAGE_SIZE", "10Gi"),
                        help="size of each role's work PVC (default 10Gi)")
    parser.add_argument("--storage-class", default=env("LOOPPHASE_STORAGE_CLASS") or None,
                        help="storageClassName of the work PVCs (default: the cluster's default)")
    parser.add_argument("--git-cache-dir", default=env("LOOPPHASE_GIT_CACHE",
                                                       str(Path(tempfile.gettempdir()) / "loopphase-git")),
                        help="where the operator keeps its git clones and ssh keys")
    parser.add_argument("--operator-namespace",
                        default=env("POD_NAMESPACE", "loopphase-system"),
                        help="the operator's namespace: agents admit their shim port from it")
    parser.add_argument("--metrics-port", type=int, default=int(env("LOOPPHASE_METRICS_PORT", "9090")),
                        help="serve Prometheus metrics on this port (-1: off)")
    parser.add_argument("--metrics-host", default=env("LOOPPHASE_METRICS_HOST", "0.0.0.0"),
                        help="address for --metrics-port (default 0.0.0.0)")
    parser.add_argument("--webhook-listen", default=env("LOOPPHASE_WEBHOOK_LISTEN", DEFAULT_LISTEN),
                        help="push webhooks: POST /webhook on HOST:PORT (default "
                             f"{DEFAULT_LISTEN}; 'off' disables, LoopPhases then poll)")
    parser.add_argument("--api-timeout", type=float, default=10.0, help="seconds per Kubernetes API call (default 10)")
    parser.add_argument("--shim-timeout", type=float, default=5.0, help="seconds per shim call (default 5)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser.parse_args(argv)


def random_priority() -> int:
    """A peering priority no other replica will share (1 .. 2**31-1)."""
    return 1 + secrets.randbelow(2**31 - 2)


def webhook_listen(value: str) -> tuple[str, int] | None:
    """``--webhook-listen``: None when off; raises SystemExit naming the flag when malformed."""
    if value.strip().lower() in {"", "off", "none", "false"}:
        return None
    try:
        return parse_listen(value)
    except ValueError as err:
        raise SystemExit(f"loopphase operator: --webhook-listen: {err}") from err


def make_context(args: argparse.Namespace) -> OperatorContext:
    return OperatorContext(
        pod_settings=PodSettings(
            agent_image=args.agent_image,
            image_pull_policy=args.image_pull_policy,
            shim_port=args.shim_port,
            storage_size=args.storage_size,
            storage_class=args.storage_class,
            operator_namespace=args.operator_namespace,
        ),
        git_cache=Path(args.git_cache_dir),
        api_timeout=args.api_timeout,
        shim_timeout=args.shim_timeout,
        webhooks=OperatorWebhooks(webhook_listen(args.webhook_listen)),
    )


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    install_log_scrubbing()
    ctx = make_context(args)
    if args.metrics_port >= 0:
        serve(ctx.metrics, args.metrics_port, args.metrics_host)
    namespaces = list(args.namespace)
    target = None if args.standalone else PeeringTarget(args.peering, tuple(namespaces))
    registry = build_registry(ctx, peering=target)
    priority = args.priority if args.priority is not None else random_priority()
    settings = configure(kopf.OperatorSettings(), standalone=args.standalone,
                         peering_name=args.peering, priority=priority,
                         peering_lifetime=args.peering_lifetime,
                         api_timeout=max(30.0, args.api_timeout))
    if not args.standalone:
        logging.getLogger(__name__).info(
            "peering %r (%s) with priority %d, lifetime %d s", args.peering,
            "cluster-wide" if not namespaces else "in " + ", ".join(namespaces), priority,
            args.peering_lifetime)
    asyncio.run(
        kopf.operator(
            registry=registry,
            settings=settings,
            clusterwide=not namespaces,
            namespaces=namespaces,
            standalone=args.standalone,
            peering_name=args.peering if not args.standalone else None,
            liveness_endpoint=args.liveness,
        )
    )
    return 0

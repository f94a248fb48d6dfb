"""``loopphase operator``: run the LoopPhase operator (kopf) cluster-wide or for namespaces."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import kopf

from loopphase.cli import plain, port_number, port_or_off
from loopphase.metrics import MetricsServeError, serve
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
    parser.add_argument("--shim-port", type=port_number, default=None, metavar="PORT",
                        help="port of the shims' HTTP API in the pods (default "
                             "$LOOPPHASE_SHIM_PORT, else 8790)")
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
    parser.add_argument("--metrics-port", type=port_or_off, default=None, metavar="PORT",
                        help="serve Prometheus metrics on this port (-1: off; default "
                             "$LOOPPHASE_METRICS_PORT, else 9090)")
    parser.add_argument("--metrics-host", default=env("LOOPPHASE_METRICS_HOST", "0.0.0.0"),
                        help="address for --metrics-port (default 0.0.0.0)")
    parser.add_argument("--webhook-listen", default=env("LOOPPHASE_WEBHOOK_LISTEN", DEFAULT_LISTEN),
                        help="push webhooks: POST /webhook on HOST:PORT (default "
                             f"{DEFAULT_LISTEN}; 'off' disables, LoopPhases then poll)")
    parser.add_argument("--api-timeout", type=float, default=10.0, help="seconds per Kubernetes API call (default 10)")
    parser.add_argument("--shim-timeout", type=float, default=5.0, help="seconds per shim call (default 5)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    # Environment defaults are parsed after the command line (so `--help` always works) and
    # only when the flag is absent; a bad value names the variable.
    if args.shim_port is None:
        args.shim_port = env_port(parser, "LOOPPHASE_SHIM_PORT", 8790, port_number)
    if args.metrics_port is None:
        args.metrics_port = env_port(parser, "LOOPPHASE_METRICS_PORT", 9090, port_or_off)
    return args


def env_port(parser: argparse.ArgumentParser, name: str, default: int,
             parse: Callable[[str], int]) -> int:
    """The port in environment variable ``name`` (unset or empty: ``default``); a bad value
    exits through ``parser.error`` (rc 2) naming the variable and the fix."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return parse(raw)
    except argparse.ArgumentTypeError as err:
        parser.error(f"environment variable {name}: {err}; fix or unset it (default {default})")
        raise  # parser.error exits; this line is never reached


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
        try:
            serve(ctx.metrics, args.metrics_port, args.metrics_host)
        except MetricsServeError as err:
            print(f"loopphase operator: --metrics-port/--metrics-host: cannot serve metrics on "
                  f"{err}; choose a free port (-1: off) and an address of this machine",
                  file=sys.stderr)
            return 2
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

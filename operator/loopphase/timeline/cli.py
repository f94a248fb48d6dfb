"""`loopphase timeline SPEC | --state-dir DIR | --cluster NAME [-n NS] [-o out.png|.svg|.html]`.

Draws a run's history. A local run: from its state directory's action and state logs. A
LoopPhase on a cluster (``--cluster NAME``): from its status as the operator keeps it (the last
50 actions in ``status.history`` and each agent's current state), read with your kubeconfig
(``--context``, ``-n`` or the context's namespace).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loopphase.cli import plain
from loopphase.runner.loop import default_state_dir
from loopphase.runner.specfile import SpecFileError, load_spec
from loopphase.timeline.model import NoHistory, Timeline, load

API_TIMEOUT = 15.0  # seconds for reading the LoopPhase


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="loopphase timeline", description=plain(__doc__),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", nargs="?", type=Path, help="the LoopPhase YAML given to `loopphase run`")
    parser.add_argument("--state-dir", type=Path, help="the run's state directory")
    parser.add_argument("--cluster", metavar="NAME",
                        help="a LoopPhase on the cluster (instead of a local run)")
    parser.add_argument("-n", "--namespace", help="with --cluster: its namespace "
                        "(default: the kubeconfig context's)")
    parser.add_argument("--context", help="with --cluster: the kubeconfig context (default: current)")
    parser.add_argument("-o", "--output", type=Path, default=Path("timeline.png"),
                        help="out.png, out.svg or out.html (default timeline.png)")
    args = parser.parse_args(argv)
    if args.cluster is not None and (args.file is not None or args.state_dir is not None):
        parser.error("--cluster NAME reads the cluster: give no spec FILE or --state-dir with it")
    if args.cluster is None and (args.namespace or args.context):
        parser.error("-n/--namespace and --context go with --cluster NAME")
    if args.state_dir is None and args.file is None and args.cluster is None:
        parser.error("give the spec FILE, --state-dir, or --cluster NAME")
    try:
        from loopphase.timeline.render import render
    except ImportError as err:
        print(f"loopphase timeline: {err}", file=sys.stderr)
        return 2
    if args.cluster is not None:
        code, where, timeline = _cluster_timeline(args.cluster, args.namespace, args.context)
        if timeline is None:
            return code
    else:
        state_dir = args.state_dir
        if state_dir is None:
            try:
                state_dir = default_state_dir(load_spec(args.file))
            except SpecFileError as err:
                print(f"loopphase timeline: {err}", file=sys.stderr)
                return 2
        where = str(state_dir)
        try:
            timeline = load(state_dir)
        except (NoHistory, ValueError) as err:
            print(f"loopphase timeline: {state_dir}: {err}", file=sys.stderr)
            return 1
    try:
        render(timeline, args.output)
    except ValueError as err:
        print(f"loopphase timeline: {where}: {err}", file=sys.stderr)
        return 1
    print(f"wrote {args.output} ({len(timeline.roles)} lanes, {timeline.start:%H:%M:%S} to {timeline.end:%H:%M:%S})")
    return 0


def _cluster_timeline(name: str, namespace: str | None,
                      context: str | None) -> tuple[int, str, Timeline | None]:
    """(exit code, "lp NS/NAME", the Timeline or None with the reason printed)."""
    from kubernetes.config import ConfigException
    from pydantic import ValidationError

    from loopphase.operator.kubeapi import KubeApiError, load_cli_configuration
    from loopphase.timeline.cluster import from_status

    try:
        configuration, default_ns = load_cli_configuration(context)
    except ConfigException as err:
        print(f"loopphase timeline: no cluster credentials: {err} (set KUBECONFIG or --context)",
              file=sys.stderr)
        return 2, name, None
    namespace = namespace or default_ns
    where = f"lp {namespace}/{name}"
    try:
        obj = asyncio.run(_read(configuration, namespace, name))
    except (KubeApiError, TimeoutError, OSError) as err:
        print(f"loopphase timeline: {where}: cannot read it: {err}", file=sys.stderr)
        return 1, where, None
    if obj is None:
        print(f"loopphase timeline: {where}: not found (check the name and -n NAMESPACE)",
              file=sys.stderr)
        return 1, where, None
    try:
        return 0, where, from_status(obj.get("status") or {}, datetime.now(UTC))
    except NoHistory as err:
        print(f"loopphase timeline: {where}: {err}", file=sys.stderr)
    except ValidationError as err:
        print(f"loopphase timeline: {where}: status unreadable by this version: "
              f"{err.errors()[0].get('loc')}: {err.errors()[0].get('msg')}", file=sys.stderr)
    return 1, where, None


async def _read(configuration: Any, namespace: str, name: str) -> dict[str, Any] | None:
    from loopphase.api.base import API_GROUP, API_VERSION, PLURAL
    from loopphase.operator.kubeapi import KubeApi, custom_ref

    api = KubeApi(configuration, timeout=API_TIMEOUT, max_workers=1)
    try:
        return await api.get(custom_ref(API_GROUP, API_VERSION, namespace, PLURAL, name))
    finally:
        await api.close()


def write_timeline(state_dir: Path, out: Path) -> Path | None:
    """Draw ``state_dir``'s run to ``out`` and say so; None (with the reason printed) when
    matplotlib is missing or nothing was recorded. For `loopphase demo`'s last step."""
    try:
        from loopphase.timeline.render import render
    except ImportError as err:
        print(f"timeline not drawn: {err}")
        return None
    try:
        render(load(state_dir), out)
    except (NoHistory, ValueError) as err:
        print(f"timeline not drawn: {err}")
        return None
    print(f"timeline: {out.resolve()}")
    return out

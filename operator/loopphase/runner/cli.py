"""`loopphase run FILE.yaml`: run a LoopPhase on this machine (agents as local shims)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from loopphase.outbound import install_log_scrubbing
from loopphase.runner.loop import Runner
from loopphase.runner.specfile import SpecFileError, load_spec
from loopphase.runner.store import RunLocked
from loopphase.runner.webhook import WebhookConfigError, resolve_config


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="loopphase run", description=__doc__)
    parser.add_argument("file", type=Path, help="a LoopPhase manifest (or a bare spec) in YAML")
    parser.add_argument("--state-dir", type=Path, help="default: .loopphase/<name> beside FILE")
    parser.add_argument("--stop", action="store_true", help="stop every agent of this run and exit")
    parser.add_argument("--keep-running", action="store_true",
                        help="keep supervising after the sequence completes")
    parser.add_argument("--max-ticks", type=int, help="stop after this many ticks (testing)")
    parser.add_argument("--webhook-listen", metavar="HOST:PORT",
                        help="receive push webhooks here (e.g. 127.0.0.1:9797); the remote is "
                             "then polled only every repo.webhook.pollInterval (default 60s)")
    parser.add_argument("--webhook-secret-file", type=Path, metavar="FILE",
                        help="the webhook secret (default: repo.webhook.secretFile, then "
                             "$LOOPPHASE_WEBHOOK_SECRET)")
    parser.add_argument("--log-level", default="INFO")
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    install_log_scrubbing()
    try:
        loaded = load_spec(args.file)
    except SpecFileError as err:
        print(f"loopphase run: {err}", file=sys.stderr)
        return 2
    try:
        webhook = None if args.stop else resolve_config(loaded, args.webhook_listen,
                                                        args.webhook_secret_file)
    except WebhookConfigError as err:
        print(f"loopphase run: {err}", file=sys.stderr)
        return 2
    runner = Runner(loaded, args.state_dir, webhook=webhook)
    if args.stop:
        asyncio.run(runner.stop_everything())
        print(f"stopped every agent of {loaded.name} ({runner.state_dir})")
        return 0
    return asyncio.run(_run(runner, args))


async def _run(runner: Runner, args: argparse.Namespace) -> int:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, runner.request_stop)
    try:
        status = await runner.run(exit_on_complete=not args.keep_running, max_ticks=args.max_ticks)
    except RunLocked as err:
        print(f"loopphase run: {err}", file=sys.stderr)
        return 1
    except OSError as err:  # the webhook address is taken or not ours to bind
        print(f"loopphase run: --webhook-listen {args.webhook_listen}: {err.strerror or err}",
              file=sys.stderr)
        return 1
    print(f"{runner.loaded.name}: {status.phase} ({status.progress}); state in {runner.state_dir}")
    if status.completed_at is None:
        print("agents keep running; `loopphase run` again adopts them, `--stop` stops them")
    return 0

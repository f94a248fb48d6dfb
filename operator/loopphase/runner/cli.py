"""`loopphase run FILE.yaml`: run a LoopPhase on this machine (agents as local shims).

Before anything starts, the spec is checked like `loopphase validate` does (fields, files,
CLIs on PATH). State lives in .loopphase/<name>/ beside FILE (0700). Ctrl-C leaves the agents
running; running again adopts them. Edits to FILE are applied while it runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path

import psutil

from loopphase.api.status import LoopPhaseStatus
from loopphase.cli import LOG_LEVELS, log_level, port_number
from loopphase.metrics import LoopMetrics, MetricsServeError, serve
from loopphase.outbound import install_log_scrubbing
from loopphase.runner.branch_lock import BranchLocked
from loopphase.runner.loop import Runner, StateDirLost
from loopphase.runner.preflight import local_problems
from loopphase.runner.secure import UnsafeStateDir, write_private
from loopphase.runner.specfile import SpecFileError, load_spec
from loopphase.runner.store import RunLocked, StateDamaged, StateMismatch
from loopphase.runner.webhook import WebhookConfigError, resolve_config

STOP_WAIT = 30.0
STOP_REQUEST = "stop.request"  # {"pid": <pid of `loopphase run --stop`>} while it stops this run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="loopphase run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", type=Path, metavar="FILE", help="a LoopPhase manifest (or a bare spec) in YAML")
    parser.add_argument("--state-dir", type=Path, help="where the run keeps its state (default: .loopphase/<name> beside FILE)")
    parser.add_argument("--stop", action="store_true",
                        help="stop a live runner of FILE, then every agent of this run, and exit")
    parser.add_argument("--from-log", action="store_true",
                        help="rebuild a damaged status.json from the journal first (like `loopphase repair`)")
    parser.add_argument("--keep-running", action="store_true",
                        help="keep supervising after the sequence completes")
    parser.add_argument("--max-ticks", type=int, help="stop after this many ticks (testing)")
    parser.add_argument("--metrics-port", type=port_number, metavar="PORT",
                        help="serve Prometheus metrics on this port (0: any free port)")
    parser.add_argument("--metrics-host", default="127.0.0.1",
                        help="address for --metrics-port (default 127.0.0.1)")
    parser.add_argument("--webhook-listen", metavar="HOST:PORT",
                        help="receive push webhooks here (e.g. 127.0.0.1:9797); the remote is "
                             "then polled only every repo.webhook.pollInterval (default 60s)")
    parser.add_argument("--webhook-secret-file", type=Path, metavar="FILE",
                        help="the webhook secret (default: repo.webhook.secretFile, then "
                             "$LOOPPHASE_WEBHOOK_SECRET)")
    parser.add_argument("--log-level", type=log_level, default="INFO", help=f"one of {', '.join(LOG_LEVELS)} (default INFO)")
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
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
    metrics = None
    if args.metrics_port is not None and not args.stop:
        metrics = LoopMetrics()
        try:
            server = serve(metrics, args.metrics_port, args.metrics_host)
        except MetricsServeError as err:
            print(f"loopphase run: --metrics-port/--metrics-host: cannot serve metrics on {err}; "
                  "choose a free port (0: any free port) and an address of this machine "
                  "(nothing was started)", file=sys.stderr)
            return 2
        print(f"metrics on http://{args.metrics_host}:{server.server_port}/metrics", flush=True)
    try:
        runner = Runner(loaded, args.state_dir, webhook=webhook,
                        on_message=lambda text: print(text, flush=True), metrics=metrics)
    except UnsafeStateDir as err:
        print(f"loopphase run: {err}", file=sys.stderr)
        return 2
    if args.stop:
        return asyncio.run(_stop(runner))
    problems = local_problems(loaded.spec, loaded.path.parent)
    for problem in (p for p in problems if not p.lasting):
        print(f"loopphase run: warning: {problem}; starting anyway (the clone is retried with "
              "backoff)", file=sys.stderr)
    problems = [p for p in problems if p.lasting]
    if problems:
        lines = "\n".join(f"  {problem}" for problem in problems)
        print(f"loopphase run: {args.file} cannot start on this machine (nothing was started):\n{lines}",
              file=sys.stderr)
        return 2
    return asyncio.run(_run(runner, args))


def _wait_for_runner_exit(pid: int, deadline: float) -> bool:
    try:
        psutil.Process(pid).wait(timeout=max(0.0, deadline - time.monotonic()))
    except psutil.NoSuchProcess:
        return True
    except psutil.TimeoutExpired:
        return False
    return True


async def _stop(runner: Runner) -> int:
    """Ask a live runner to stop (SIGTERM to the lock holder), take the lock so nothing restarts
    an agent, then stop every agent of this run (by record and by process marker)."""
    deadline = time.monotonic() + STOP_WAIT
    while True:
        try:
            runner.store.lock()
            break
        except RunLocked as err:
            if err.pid is None or time.monotonic() > deadline:
                print(f"loopphase run --stop: {err}; it did not stop within {STOP_WAIT:.0f}s", file=sys.stderr)
                return 1
            print(f"asking the live runner (pid {err.pid}) to stop")
            # Tells the runner that the SIGTERM is `--stop`'s, so its last line says that its
            # agents are stopped, not that they keep running.
            write_private(runner.state_dir / STOP_REQUEST, json.dumps({"pid": os.getpid()}))
            try:
                psutil.Process(err.pid).terminate()
            except psutil.NoSuchProcess:
                pass  # it exited meanwhile: take the lock on the next try
            except psutil.AccessDenied:
                print(f"loopphase run --stop: runner pid {err.pid} is not yours to stop", file=sys.stderr)
                return 1
            await asyncio.to_thread(_wait_for_runner_exit, err.pid, deadline)
    try:
        lines = await runner.stop_everything()
    finally:
        (runner.state_dir / STOP_REQUEST).unlink(missing_ok=True)
        runner.store.unlock()
    for line in lines:
        print(f"  {line}")
    print(f"stopped every agent of {runner.loaded.name} ({runner.state_dir})" if lines
          else f"no agent of {runner.loaded.name} was running ({runner.state_dir})")
    return 0


async def _run(runner: Runner, args: argparse.Namespace) -> int:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, runner.request_stop)
    try:
        status = await runner.run(exit_on_complete=not args.keep_running, max_ticks=args.max_ticks,
                                  from_log=args.from_log)
    except (RunLocked, BranchLocked, StateDamaged, StateMismatch, StateDirLost, UnsafeStateDir) as err:
        print(f"loopphase run: {err}", file=sys.stderr)
        return 1
    except OSError as err:  # the webhook address is taken or not ours to bind
        print(f"loopphase run: --webhook-listen {args.webhook_listen}: {err.strerror or err}",
              file=sys.stderr)
        return 1
    print(f"{runner.loaded.name}: {status.phase} ({status.progress}); state in {runner.state_dir}")
    if status.completed_at is None:
        by_stop = stop_requester(runner.state_dir)
        if by_stop is not None:
            print(f"stopped by `loopphase run --stop` (pid {by_stop}): every agent stopped")
        else:
            print(final_line(runner, status))
    return 0


def stop_requester(state_dir: Path) -> int | None:
    """The pid of a live `loopphase run --stop` that asked this runner to stop, else None."""
    try:
        pid = int(json.loads((state_dir / STOP_REQUEST).read_text(encoding="utf-8"))["pid"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as err:
        logging.getLogger("loopphase.run").warning("unreadable %s: %s", STOP_REQUEST, err)
        return None
    return pid if psutil.pid_exists(pid) else None


def final_line(runner: Runner, status: LoopPhaseStatus) -> str:
    """What is left running when the runner exits before Complete: the roles with a live
    agent host, or that none is (and why each role is not running)."""
    running = [role for role in runner.spec.roles() if runner.runtime.record(role) is not None]
    if running:
        return (f"agents keep running ({', '.join(running)}); `loopphase run` again adopts them, "
                "`--stop` stops them")
    why = []
    for role in runner.spec.roles():
        agent = status.agents.get(role)
        if agent is not None and agent.attention is not None:
            why.append(f"{role}: {agent.state}({agent.attention.reason}): {agent.attention.message}")
        elif agent is not None:
            why.append(f"{role}: {agent.state}{f': {agent.reason}' if agent.reason else ''}")
        else:
            why.append(f"{role}: never started")
    return "no agent is running (none started or all stopped):\n" + "\n".join(f"  {w}" for w in why)

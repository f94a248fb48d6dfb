"""`loopphase attach ROLE [FILE | --state-dir DIR | --shim-state DIR] [--rw]`.

Opens the agent's live tmux session: read-only by default (``tmux attach -r``: keys do
nothing except detaching, so nothing reaches the agent), ``--rw`` to type into it. Detach with
the tmux detach key (Ctrl-b d); the agent keeps running untouched.

The shim records its tmux socket name in ``<shim state dir>/tmux.socket``. A local run keeps
the shim state in ``<state dir>/shim-state/<role>``; an agent pod in
``/work/.loopphase/<role>``, so on a cluster the same command runs in the pod:
``kubectl exec -it POD -- loopphase attach ROLE --shim-state /work/.loopphase/ROLE``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from loopphase.api.spec import ROLES
from loopphase.cli import plain
from loopphase.runner.loop import default_state_dir
from loopphase.runner.specfile import SpecFileError, load_spec
from loopphase.shim.server import SOCKET_FILE
from loopphase.shim.tmux import SESSION


class AttachError(RuntimeError):
    """Why there is nothing to attach to, with the fix."""


def shim_state_dir(args: argparse.Namespace) -> Path:
    if args.shim_state is not None:
        return args.shim_state
    state_dir = args.state_dir
    if state_dir is None:
        try:
            state_dir = default_state_dir(load_spec(args.spec))
        except SpecFileError as err:
            raise AttachError(str(err)) from err
    return state_dir / "shim-state" / args.role


def socket_name(shim_state: Path) -> str:
    """The tmux socket name the role's shim uses; AttachError when the shim never wrote one."""
    path = shim_state / SOCKET_FILE
    try:
        name = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError as err:
        raise AttachError(
            f"no {path}: no agent host has run there (start the run with `loopphase run`; "
            "a shim started by an older loopphase records no socket: `loopphase run --stop`, "
            "then run again)"
        ) from err
    if not name or "/" in name:
        raise AttachError(f"{path} does not hold a tmux socket name: {name[:60]!r}")
    return name


HAS_SESSION_TIMEOUT = 10.0  # seconds for `tmux has-session`


def spec_file(args: argparse.Namespace) -> Path | None:
    """The spec FILE given positionally or as ``--spec`` (the older spelling), or None."""
    return args.file if args.file is not None else args.spec


def check_session(socket: str, role: str, where: Path, spec: Path | None) -> None:
    """AttachError unless the tmux server on ``socket`` has the agent's session (else tmux's own
    attach would print only "no sessions" or "no server running")."""
    try:
        done = subprocess.run(["tmux", "-L", socket, "has-session", "-t", SESSION],
                              capture_output=True, text=True, timeout=HAS_SESSION_TIMEOUT, check=False)
    except subprocess.TimeoutExpired as err:
        raise AttachError(f"tmux did not answer within {HAS_SESSION_TIMEOUT:.0f}s (socket {socket})") from err
    if done.returncode != 0:
        raise AttachError(f"no live agent for {role} in {where}: start the run with "
                          f"`loopphase run {spec or 'FILE'}`")


def attach_argv(socket: str, *, read_write: bool) -> list[str]:
    """``tmux -L SOCKET attach-session -t agent [-r]`` as an argv list (no shell)."""
    argv = ["tmux", "-L", socket, "attach-session", "-t", SESSION]
    if not read_write:
        argv.append("-r")
    return argv


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="loopphase attach", description=plain(__doc__),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("role", choices=ROLES, help="the agent to look at")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("file", nargs="?", type=Path, default=None, metavar="FILE",
                       help="the LoopPhase YAML given to `loopphase run` (default: loopphase.yaml)")
    where.add_argument("--spec", type=Path, default=None, metavar="FILE",
                       help="the same FILE (the older spelling, kept working)")
    where.add_argument("--state-dir", type=Path, help="the run's state directory")
    where.add_argument("--shim-state", type=Path,
                       help="the shim's own state directory (in an agent pod: /work/.loopphase/ROLE)")
    parser.add_argument("--rw", action="store_true",
                        help="read-write: your keys reach the agent (default: read-only)")
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    args.spec = spec_file(args)
    if args.spec is None and args.state_dir is None and args.shim_state is None:
        args.spec = Path("loopphase.yaml")
    if shutil.which("tmux") is None:
        print("loopphase attach: tmux is not installed", file=sys.stderr)
        return 2
    try:
        shim_state = shim_state_dir(args)
        socket = socket_name(shim_state)
        where = shim_state if args.shim_state is not None else shim_state.parent.parent
        check_session(socket, args.role, where, args.spec)
    except AttachError as err:
        print(f"loopphase attach: {err}", file=sys.stderr)
        return 1
    mode = "read-write: what you type reaches the agent" if args.rw else "read-only"
    print(f"attaching to {args.role} ({mode}); detach with Ctrl-b d", file=sys.stderr, flush=True)
    env = {k: v for k, v in os.environ.items() if k != "TMUX"}  # allow attaching from inside tmux
    os.execvpe("tmux", attach_argv(socket, read_write=args.rw), env)
    return 0  # not reached: exec replaces this process

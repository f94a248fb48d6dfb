"""``loopphase``: one command, many subcommands.

Each subcommand lives in the module that owns it and parses its own arguments
(``main(argv) -> int``); this file only dispatches, importing lazily so that
``loopphase shim`` in an agent pod never imports kopf.
"""

from __future__ import annotations

import importlib
import os
import sys

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("loopphase.demo.main", "the whole loop on simulated agents (start here)"),
    "run": ("loopphase.runner.cli", "run a LoopPhase spec on this machine (no cluster)"),
    "status": ("loopphase.runner.status_cli", "show the state of a local run"),
    "approve": ("loopphase.runner.approve_cli", "approve a phase that awaits approval (local run)"),
    "reject": ("loopphase.runner.reject_cli", "reject it: the builder is told why (local run)"),
    "attach": ("loopphase.attach_cli", "watch an agent's live screen (tmux, read-only; --cluster: kubectl exec)"),
    "timeline": ("loopphase.timeline.cli", "draw a run's history (PNG, SVG or HTML)"),
    "hook": ("loopphase.webhook.hook_cli", "install a push-webhook git hook in a repository"),
    "repair": ("loopphase.runner.repair_cli", "rebuild a local run's damaged status from its journal"),
    "operator": ("loopphase.operator.main", "run the Kubernetes operator (kopf)"),
    "shim": ("loopphase.shim.server", "host one agent CLI in tmux behind an HTTP API"),
    "sim-agent": ("loopphase.sim.agent", "a simulated agent CLI driven by a scenario file"),
    "crd": ("loopphase.api.crd", "print the CustomResourceDefinition"),
    "validate": ("loopphase.api.validate_cli", "validate a LoopPhase YAML file"),
    "bench": ("loopphase.bench.main", "run the benchmarks"),
    "model-server": ("loopphase.modelserver.server", "a scripted model endpoint for the real CLIs"),
}


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def log_level(value: str) -> str:
    """argparse ``type`` for every ``--log-level``: a logging level name in any case."""
    import argparse

    if value.upper() not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(f"{value!r} is not a log level: choose one of {', '.join(LOG_LEVELS)}")
    return value.upper()


def port_number(value: str, *, allow_off: bool = False) -> int:
    """argparse ``type`` for a TCP port: an integer 0-65535 (and -1 = off when ``allow_off``).

    Raises ``argparse.ArgumentTypeError`` naming the accepted range otherwise.
    """
    import argparse

    low = -1 if allow_off else 0
    try:
        port = int(value.strip())
    except ValueError:
        port = None
    if port is None or not low <= port <= 65535:
        extra = " or -1 (off)" if allow_off else ""
        raise argparse.ArgumentTypeError(f"{value!r} is not a port: give a number 0-65535{extra}")
    return port


def port_or_off(value: str) -> int:
    """argparse ``type``: a TCP port 0-65535, or -1 for off (see ``port_number``)."""
    return port_number(value, allow_off=True)


def plain(doc: str | None) -> str:
    """A module docstring as an argparse description: reStructuredText ``code`` -> `code`."""
    return (doc or "").replace("``", "`").strip()


def usage() -> str:
    lines = ["usage: loopphase <command> [options]", "", "commands:"]
    width = max(len(name) for name in SUBCOMMANDS)
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in SUBCOMMANDS.items()]
    return "\n".join(lines)


EXIT_BROKEN_PIPE = 128 + 13  # what a shell reports for a command killed by SIGPIPE


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand. Output into a closed pipe (``loopphase status X | head -3``) ends
    the command quietly with 141 instead of a BrokenPipeError traceback. SIGPIPE itself stays
    ignored (Python's default): long-lived commands (run, shim) write to sockets, and a reset
    connection must be an error they handle, not a signal that kills them."""
    try:
        code = _dispatch(sys.argv[1:] if argv is None else argv)
        sys.stdout.flush()  # inside the try: a pipe closed early fails here, not at exit
        return code
    except BrokenPipeError:
        # Python flushes stdout again at exit: point it at /dev/null so that flush cannot fail.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_BROKEN_PIPE


def _dispatch(args: list[str]) -> int:
    if not args or args[0] in {"-h", "--help", "help"}:
        print(usage())
        return 0
    if args[0] in {"--version", "version"}:
        from loopphase import __version__

        print(__version__)
        return 0
    name, rest = args[0], args[1:]
    if name not in SUBCOMMANDS:
        print(f"loopphase: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(SUBCOMMANDS[name][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())

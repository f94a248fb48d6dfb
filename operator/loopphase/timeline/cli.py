"""`loopphase timeline SPEC | --state-dir DIR [-o out.png|.svg|.html]`: draw a local run's history."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from loopphase.cli import plain
from loopphase.runner.loop import default_state_dir
from loopphase.runner.specfile import SpecFileError, load_spec
from loopphase.timeline.model import NoHistory, load


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="loopphase timeline", description=plain(__doc__))
    parser.add_argument("file", nargs="?", type=Path, help="the LoopPhase YAML given to `loopphase run`")
    parser.add_argument("--state-dir", type=Path, help="the run's state directory")
    parser.add_argument("-o", "--output", type=Path, default=Path("timeline.png"),
                        help="out.png, out.svg or out.html (default timeline.png)")
    args = parser.parse_args(argv)
    if args.state_dir is None and args.file is None:
        parser.error("give the spec FILE or --state-dir")
    state_dir = args.state_dir
    if state_dir is None:
        try:
            state_dir = default_state_dir(load_spec(args.file))
        except SpecFileError as err:
            print(f"loopphase timeline: {err}", file=sys.stderr)
            return 2
    try:
        from loopphase.timeline.render import render
    except ImportError as err:
        print(f"loopphase timeline: {err}", file=sys.stderr)
        return 2
    try:
        timeline = load(state_dir)
        render(timeline, args.output)
    except (NoHistory, ValueError) as err:
        print(f"loopphase timeline: {state_dir}: {err}", file=sys.stderr)
        return 1
    print(f"wrote {args.output} ({len(timeline.roles)} lanes, {timeline.start:%H:%M:%S} to {timeline.end:%H:%M:%S})")
    return 0


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

"""`loopphase validate FILE.yaml`: check a LoopPhase manifest; errors name the field and fix."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="loopphase validate", description=__doc__)
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args(argv)
    from loopphase.runner.specfile import SpecFileError, load_spec

    failed = 0
    for path in args.files:
        try:
            loaded = load_spec(path)
        except SpecFileError as err:
            print(err, file=sys.stderr)
            failed += 1
            continue
        print(f"{path}: valid LoopPhase {loaded.name!r} ({len(loaded.spec.phases)} phases)")
    return 1 if failed else 0

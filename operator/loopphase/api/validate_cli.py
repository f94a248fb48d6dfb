"""`loopphase validate FILE.yaml`: check a LoopPhase manifest; errors name the field and fix."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="loopphase validate", description=__doc__)
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args(argv)
    from loopphase.outbound import url_credentials
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
        for found in url_credentials(loaded.spec.repo.url):
            print(
                f"{path}: warning: spec.repo.url carries {found}; anyone who can read the "
                "LoopPhase (or its status and logs) sees the URL. Put the credentials in a "
                "Secret and name it in spec.repo.credentialsSecret (docs/kubernetes.md).",
                file=sys.stderr,
            )
    return 1 if failed else 0

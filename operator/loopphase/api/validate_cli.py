"""`loopphase validate FILE.yaml...`: check LoopPhase manifests; every error names the field and the fix.

By default a file is also checked for `loopphase run` on this machine: the repository
answers `git ls-remote` and has the branch, scenario and prompt files exist and parse, and
each backend's CLI (claude, opencode) and tmux and git are on PATH. `--cluster` checks only what the operator checks (for manifests meant for `kubectl apply`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="loopphase validate", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE",
                        help="LoopPhase manifests (or bare specs) in YAML")
    parser.add_argument("--cluster", action="store_true",
                        help="skip the checks for this machine (repository, files, CLIs on PATH)")
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from loopphase.outbound import url_credentials
    from loopphase.runner.preflight import cluster_problems, local_problems
    from loopphase.runner.specfile import SpecFileError, load_spec

    failed = 0
    for path in args.files:
        try:
            loaded = load_spec(path)
        except SpecFileError as err:
            print(err, file=sys.stderr)
            failed += 1
            continue
        for found in url_credentials(loaded.spec.repo.url):
            print(
                f"{path}: warning: spec.repo.url carries {found}; anyone who can read the "
                "LoopPhase (or its status and logs) sees the URL. Put the credentials in a "
                "Secret and name it in spec.repo.credentialsSecret (docs/kubernetes.md).",
                file=sys.stderr,
            )
        problems = cluster_problems(loaded.spec, loaded.name) if args.cluster else local_problems(loaded.spec, loaded.path.parent)
        if problems:
            lines = "\n".join(f"  {problem}" for problem in problems)
            where = "on a cluster" if args.cluster else "on this machine"
            print(f"{path}: cannot start {where}:\n{lines}", file=sys.stderr)
            failed += 1
            continue
        where = "" if args.cluster else ", can start here"
        count = len(loaded.spec.phases)
        print(f"{path}: valid LoopPhase {loaded.name!r} ({count} phase{'' if count == 1 else 's'}{where})")
    return 1 if failed else 0

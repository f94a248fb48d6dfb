"""`loopphase reject FILE|--state-dir DIR --message M [--phase ID]` (see approve_cli)."""

from __future__ import annotations

from loopphase.runner.approve_cli import reject_main


def main(argv: list[str]) -> int:
    return reject_main(argv)

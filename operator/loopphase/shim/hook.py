"""Claude Code hook command: ``python3 -m loopphase.shim.hook <events-file>``.

Reads the hook's event JSON from stdin and appends one JSON line (the event plus
``receivedAt``) to the events file, which the shim reports in its state. Never fails the
agent: errors go to stderr and the exit code is 0.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime

MAX_EVENT_BYTES = 256 * 1024


def record(path: str, raw: str) -> None:
    try:
        event = json.loads(raw) if raw.strip() else {}
    except json.JSONDecodeError as exc:
        event = {"hook_event_name": "Unparsable", "error": str(exc), "raw": raw[:2000]}
    if not isinstance(event, dict):
        event = {"hook_event_name": "Unparsable", "raw": raw[:2000]}
    event["receivedAt"] = datetime.now(UTC).isoformat()
    line = json.dumps(event, ensure_ascii=False) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python3 -m loopphase.shim.hook <events-file>", file=sys.stderr)
        return 0
    try:
        record(args[0], sys.stdin.read(MAX_EVENT_BYTES))
    except OSError as exc:
        print(f"loopphase hook: cannot record event: {exc}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

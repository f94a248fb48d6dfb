"""``loopphase run``'s account-hold exchange: one JSON file per LoopPhase in a private directory.

Runs whose state directories sit side by side (specs in one folder share ``.loopphase/``)
read each other's holds from ``.loopphase/account-holds/<name>.json``
(``{"publishedAt": ISO time, "holds": [AccountHold, ...]}``). The directory is created 0700
and files are written 0600 without following symlinks (``runner.secure``), like the rest of the
run state. The interface is ``controller.account_holds.HoldRegistry``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from loopphase.api.status import AccountHold
from loopphase.controller.account_holds import STALE_AFTER, stamp
from loopphase.runner.secure import private_dir, write_private

log = logging.getLogger(__name__)
_HOLDS = TypeAdapter(list[AccountHold])


@dataclass
class FileHoldRegistry:
    directory: Path
    stale_after: float = STALE_AFTER

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}.json"

    def publish(self, key: str, holds: list[AccountHold], now: datetime) -> None:
        path = self._path(key)
        if not holds:
            path.unlink(missing_ok=True)
            return
        private_dir(self.directory)
        body = {
            "publishedAt": now.isoformat(),
            "holds": [h.model_dump(mode="json", by_alias=True) for h in stamp(key, holds)],
        }
        write_private(path, json.dumps(body, indent=1) + "\n")

    def others(self, key: str, now: datetime) -> tuple[AccountHold, ...]:
        """Every other run's fresh holds (older than ``stale_after`` s: its publisher stopped)."""
        if not self.directory.is_dir():
            return ()
        fresh = now - timedelta(seconds=self.stale_after)
        out: list[AccountHold] = []
        for path in sorted(self.directory.glob("*.json")):
            if path.stem == key:
                continue
            try:
                body = json.loads(path.read_text(encoding="utf-8"))
                published = datetime.fromisoformat(body["publishedAt"])
                holds = _HOLDS.validate_python(body["holds"])
            except (OSError, ValueError, KeyError, TypeError, ValidationError) as err:
                log.warning("account holds file %s unreadable, ignored: %s", path, err)
                continue
            if published >= fresh:
                out.extend(holds)
        return tuple(out)

    def forget(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

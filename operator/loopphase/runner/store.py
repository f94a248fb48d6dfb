"""Persisted state of a local run, made so that it cannot lie.

Files in the state directory (0700; files 0600, see ``loopphase.runner.secure``):

* ``status.json``: ``{"format": 1, "sha256": <hex>, "status": <LoopPhaseStatus wire dict>}``,
  replaced atomically; the checksum is over the canonical JSON of ``status``
  (``json.dumps(sort_keys=True, separators=(",", ":"))``).
* ``status.journal.jsonl``: one line per save, appended and fsynced BEFORE ``status.json`` is
  replaced: ``{"seq", "time", "set": {field: value}, "unset": [field], "historyAppend": [...],
  "sha256"}`` (top-level fields of the wire status that changed; new history entries only), or
  ``{"seq", "time", "snapshot": <whole status>, "sha256"}`` (the first save, and compaction).
  Folding it from the last snapshot gives every saved status exactly; each line's checksum
  proves it.
* ``actions.jsonl``: every action with rule, reason and outcome (for people and the demo).
* ``binding.json``: the repository URL and branch this state belongs to.
* ``run.lock``: held (flock) by the live ``loopphase run``; holds its pid.

A ``status.json`` that is missing while the journal has saves, unreadable, of the wrong shape,
or failing its checksum is refused with ``StateDamaged``, whose message names the recovery
command; nothing is ever silently started over.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from loopphase.api.base import clip
from loopphase.api.status import HISTORY_LIMIT, LoopPhaseStatus
from loopphase.outbound import redact_patterns
from loopphase.runner import locks
from loopphase.runner.secure import open_private_append, private_dir, write_private

FORMAT = 1
COMPACT_AFTER = 2000  # journal lines before they are folded into one snapshot line


class RunLocked(RuntimeError):
    """Another `loopphase run` already drives this state directory."""

    def __init__(self, message: str, pid: int | None = None) -> None:
        super().__init__(message)
        self.pid = pid


class StateDamaged(RuntimeError):
    """``status.json`` cannot be trusted; the message says why and how to recover."""


class StateMismatch(RuntimeError):
    """The state directory belongs to another repository or branch."""


def checksum(wire: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(wire, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def recovery_hint(spec_hint: str) -> str:
    return (f"rebuild it from the journal with `loopphase repair {spec_hint}` (or "
            f"`loopphase run {spec_hint} --from-log`)")


class StateStore:
    def __init__(self, state_dir: Path, *, create: bool = True, spec_hint: str = "SPEC.yaml") -> None:
        self.dir = state_dir
        if create:
            private_dir(state_dir)
        self.status_path = state_dir / "status.json"
        self.journal_path = state_dir / "status.journal.jsonl"
        self.actions_path = state_dir / "actions.jsonl"
        self.states_path = state_dir / "states.jsonl"
        self.approvals_path = state_dir / "approvals.jsonl"
        self.binding_path = state_dir / "binding.json"
        self.lock_path = state_dir / "run.lock"
        self.spec_hint = spec_hint
        self._lock_fd: int | None = None
        self._last_wire: dict[str, Any] | None = None
        self._journal_lines = 0

    # -- lock -------------------------------------------------------------------------------

    def lock(self) -> None:
        try:
            self._lock_fd = locks.acquire(self.lock_path, str(os.getpid()))
        except locks.Held as err:
            pid = int(err.text) if err.text.isdigit() else None
            raise RunLocked(f"another `loopphase run` (pid {pid or '?'}) is driving {self.dir}", pid) from err

    def holder(self) -> int | None:
        """The pid of the live ``loopphase run`` holding ``run.lock``, else None; 0 when it is
        held but the holder's pid is unknown. Read from ``/proc/locks`` (Linux), which does not
        touch the lock; elsewhere a shared non-blocking probe (released at once)."""
        try:
            info = os.stat(self.lock_path)
        except FileNotFoundError:
            return None
        held = _flock_holders(info)
        if held is not None:
            return (_pid_in(self.lock_path) or 0) if held else None
        try:
            fd = os.open(self.lock_path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_pid(fd) or 0
        finally:
            os.close(fd)  # closing releases a probe lock taken above
        return None

    def unlock(self) -> None:
        if self._lock_fd is not None:
            locks.release(self._lock_fd)
            self._lock_fd = None

    def recovery_hint(self, *, legacy: bool = False) -> str:
        """What will actually repair a damaged ``status.json`` here: ``loopphase repair``
        only when no other runner holds the directory and a journal (or, ``legacy``, an old
        unchecked file) exists to rebuild from."""
        spec = self.spec_hint
        pid = self.holder()
        if pid is not None and pid != os.getpid():
            return (f"a live `loopphase run` (pid {pid or '?'}) drives this state: it rewrites "
                    "status.json on its next save (its status is in its memory); or stop it first "
                    f"(`loopphase run {spec} --stop`), then `loopphase repair {spec}`")
        start_over = (f"stop the run's agents (`loopphase run {spec} --stop`), then move "
                      f"{self.dir} away to start over")
        try:
            journal = legacy or bool(self._journal_records())
        except StateDamaged as err:
            return f"the journal cannot rebuild it either ({err}): {start_over}"
        if not journal:
            return f"there is no journal to rebuild it from, so `loopphase repair` cannot: {start_over}"
        return recovery_hint(spec)

    # -- binding ----------------------------------------------------------------------------

    def binding_problem(self, url: str, branch: str) -> str | None:
        """Why this state dir is not the state of a run on ``url``/``branch`` (None: it is, or
        it is not bound yet). Read-only: for `loopphase status`."""
        try:
            self.check_binding(url, branch, bind=False)
        except (StateMismatch, StateDamaged) as err:
            return str(err)
        return None

    def check_binding(self, url: str, branch: str, *, bind: bool = True) -> None:
        """Bind a fresh state dir to ``url``/``branch``; refuse one made for another repo."""
        # The URL is kept as a hash (and redacted, for messages): it may carry credentials.
        want = {"repo": redact_patterns(url), "repoSha256": hashlib.sha256(url.encode()).hexdigest(),
                "branch": branch}
        try:
            have = json.loads(self.binding_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            have = None  # a fresh state dir (or one from before bindings): bind it now
        except (OSError, ValueError) as err:
            raise StateDamaged(f"{self.binding_path} is unreadable ({err}); delete it to re-bind") from err
        if have is None:
            if bind:
                write_private(self.binding_path, json.dumps(want))
            return
        if (have.get("repoSha256"), have.get("branch")) != (want["repoSha256"], branch):
            raise StateMismatch(
                f"{self.dir} holds the state of a run on {have.get('repo')} branch "
                f"{have.get('branch')}, but the spec now says {want['repo']} branch {branch}: its phase, "
                "cursors and clones belong to the other repository. Give this loop its own "
                "metadata.name (or --state-dir), or delete that directory to start over"
            )

    # -- status -----------------------------------------------------------------------------

    def load(self) -> LoopPhaseStatus:
        """The last saved status; a fresh one only for a state dir that never saved one."""
        try:
            raw = self.status_path.read_bytes()
        except FileNotFoundError:
            saves = self._journal_records()
            if saves:
                raise StateDamaged(
                    f"{self.status_path} is missing but the journal holds {len(saves)} saves: "
                    f"refusing to start over; {self.recovery_hint()}"
                ) from None
            self._last_wire = None
            return LoopPhaseStatus()
        except OSError as err:
            raise StateDamaged(f"cannot read {self.status_path}: {err}; {self.recovery_hint()}") from err
        status, wire = self._parse(raw)
        self._last_wire = wire
        self._journal_lines = len(self._journal_records())
        return status

    def _parse(self, raw: bytes) -> tuple[LoopPhaseStatus, dict[str, Any]]:
        def damaged(why: str) -> StateDamaged:
            return StateDamaged(f"{self.status_path} is damaged ({why}); {self.recovery_hint()}")

        try:
            doc = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as err:
            raise damaged(f"not JSON: {err}") from err
        if isinstance(doc, dict) and "format" not in doc and doc.get("current"):
            raise StateDamaged(f"{self.status_path} was written by an older loopphase without a "
                               f"checksum; {self.recovery_hint(legacy=True)} (it adopts it)")
        if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("status"), dict):
            raise damaged(f"expected {{\"format\": {FORMAT}, \"sha256\": ..., \"status\": {{...}}}}")
        wire = doc["status"]
        if doc.get("sha256") != checksum(wire):
            raise damaged("checksum mismatch: the file was changed or cut")
        try:
            return LoopPhaseStatus.model_validate(wire), wire
        except ValidationError as err:
            raise damaged(f"not a valid status: {err.error_count()} errors") from err

    def save(self, status: LoopPhaseStatus) -> None:
        """Journal the change (fsynced), then replace ``status.json`` atomically."""
        wire = status.to_wire()
        record = self._journal_record(wire)
        fd = open_private_append(self.journal_path)
        try:
            os.write(fd, (json.dumps(record, separators=(",", ":")) + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        self._journal_lines += 1
        self._write_status(wire)
        self._last_wire = wire
        if self._journal_lines > COMPACT_AFTER:
            self.compact()

    def _write_status(self, wire: dict[str, Any]) -> None:
        doc = {"format": FORMAT, "sha256": checksum(wire), "status": wire}
        write_private(self.status_path, json.dumps(doc, indent=1))

    def _journal_record(self, wire: dict[str, Any]) -> dict[str, Any]:
        base: dict[str, Any] = {"time": datetime.now(UTC).isoformat(), "sha256": checksum(wire)}
        old = self._last_wire
        if old is None:
            return {**base, "snapshot": wire}
        changed = {k: v for k, v in wire.items() if k != "history" and old.get(k) != v}
        unset = [k for k in old if k not in wire and k != "history"]
        record: dict[str, Any] = {**base, "set": changed, "unset": unset}
        old_history = old.get("history", [])
        new_history = wire.get("history", [])
        last_seq = old_history[-1]["seq"] if old_history else 0
        appended = [entry for entry in new_history if entry["seq"] > last_seq]
        if _fold_history(old_history, appended) == new_history:
            record["historyAppend"] = appended
        else:
            record["set"]["history"] = new_history
        return record

    def _journal_records(self) -> list[dict[str, Any]]:
        try:
            text = self.journal_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        lines = text.splitlines()
        records = []
        for number, line in enumerate(lines, 1):
            try:
                records.append(json.loads(line))
            except ValueError as err:
                if number == len(lines):
                    break  # a save cut by a crash before status.json was replaced: never applied
                raise StateDamaged(f"{self.journal_path} line {number} is damaged ({err}): cannot rebuild") from err
        return records

    def rebuild(self) -> LoopPhaseStatus:
        """The status the journal describes, verified line by line against its checksums."""
        records = self._journal_records()
        if not records:
            raise StateDamaged(
                f"no journal to rebuild from in {self.dir}: move that directory away to start over"
            )
        wire: dict[str, Any] | None = None
        for number, record in enumerate(records, 1):
            if "snapshot" in record:
                wire = dict(record["snapshot"])
            elif wire is None:
                continue  # before the first snapshot (compacted away)
            else:
                for key in record.get("unset", []):
                    wire.pop(key, None)
                wire.update(record.get("set", {}))
                if "historyAppend" in record:
                    wire["history"] = _fold_history(wire.get("history", []), record["historyAppend"])
            if checksum(wire) != record.get("sha256"):
                raise StateDamaged(f"{self.journal_path} line {number} does not reproduce its checksum")
        assert wire is not None
        return LoopPhaseStatus.model_validate(wire)

    def repair(self) -> LoopPhaseStatus:
        """Rebuild from the journal and write ``status.json``; a file that differs from the
        rebuilt status (damaged) is kept aside as ``status.damaged-<time>.json``."""
        try:
            status = self.rebuild()
        except StateDamaged:
            legacy = self._legacy_status()
            if legacy is None:
                raise
            # A status.json from before checksums (no journal yet): adopt it, journal it.
            self._last_wire = None
            self.save(legacy)
            return legacy
        wire = status.to_wire()
        try:
            current = self._parse(self.status_path.read_bytes())[1]
        except (OSError, StateDamaged):
            current = None
        if current != wire and self.status_path.exists():
            aside = self.status_path.with_name(f"status.damaged-{datetime.now(UTC):%Y%m%dT%H%M%S}.json")
            with contextlib.suppress(FileNotFoundError):
                os.replace(self.status_path, aside)
        self._write_status(wire)
        self._last_wire = wire
        return status

    def _legacy_status(self) -> LoopPhaseStatus | None:
        """A plain status.json written before checksums existed, if that is what is there and
        it holds real state (a current phase); None otherwise (``{}`` is not state)."""
        try:
            doc = json.loads(self.status_path.read_text(encoding="utf-8"))
            if not isinstance(doc, dict) or "format" in doc or not doc.get("current"):
                return None
            return LoopPhaseStatus.model_validate(doc)
        except (OSError, UnicodeDecodeError, ValueError, ValidationError):
            return None

    def compact(self) -> None:
        """Fold the journal into one snapshot line (atomic replace)."""
        if self._last_wire is None:
            return
        record = {"time": datetime.now(UTC).isoformat(), "snapshot": self._last_wire,
                  "sha256": checksum(self._last_wire)}
        write_private(self.journal_path, json.dumps(record, separators=(",", ":")) + "\n")
        self._journal_lines = 1

    # -- action log ---------------------------------------------------------------------------

    def append_actions(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        fd = open_private_append(self.actions_path)
        try:
            os.write(fd, "".join(json.dumps(r, default=_json_default) + "\n" for r in records).encode())
        finally:
            os.close(fd)

    def read_actions(self) -> list[dict[str, Any]]:
        if not self.actions_path.exists():
            return []
        return [json.loads(line) for line in self.actions_path.read_text().splitlines() if line]

    # -- agent state changes (for `loopphase timeline`) -------------------------------------

    def append_states(self, before: LoopPhaseStatus, after: LoopPhaseStatus, time: datetime) -> None:
        """Log each agent whose state or limit class changed in a tick:
        ``{"time", "role", "state", "limitClass" (or null), "reason"}`` per line."""
        records = []
        for role, agent in after.agents.items():
            old = before.agents.get(role)
            limit = agent.limit.limit_class if agent.limit is not None else None
            old_limit = old.limit.limit_class if old is not None and old.limit is not None else None
            if old is None or old.state != agent.state or old_limit != limit:
                records.append({"time": time, "role": role, "state": agent.state,
                                "limitClass": limit, "reason": clip(agent.reason, 200)})
        self._append(self.states_path, records)

    def read_states(self) -> list[dict[str, Any]]:
        return _read_lines(self.states_path)

    # -- approvals (`loopphase approve` / `reject`) -----------------------------------------

    def append_approval(self, record: dict[str, Any]) -> None:
        """One approve/reject request: a single appended line."""
        self._append(self.approvals_path, [record])

    def read_approvals(self) -> list[dict[str, Any]]:
        return _read_lines(self.approvals_path)

    def _append(self, path: Path, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        fd = open_private_append(path)
        try:
            os.write(fd, "".join(json.dumps(r, default=_json_default) + "\n" for r in records).encode())
        finally:
            os.close(fd)


def _read_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def _fold_history(history: list[dict[str, Any]], appended: list[dict[str, Any]]) -> list[dict[str, Any]]:
    merged = [*history, *appended]
    return merged[-HISTORY_LIMIT:]


def _flock_holders(info: os.stat_result) -> bool | None:
    """Whether ``/proc/locks`` lists a FLOCK on the file ``info`` describes (None: no
    /proc/locks here). Lines read ``1: FLOCK ADVISORY WRITE <pid> <maj>:<min>:<inode> 0 EOF``
    (device numbers in hex)."""
    try:
        text = Path("/proc/locks").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    want = (os.major(info.st_dev), os.minor(info.st_dev), info.st_ino)
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 6 or fields[1] != "FLOCK":
            continue
        try:
            major, minor, inode = fields[5].split(":")
            if (int(major, 16), int(minor, 16), int(inode)) == want:
                return True
        except ValueError:
            continue  # a line shape this parser does not know: not our lock
    return False


def _pid_in(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)

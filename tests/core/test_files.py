"""Where loop-state files are looked for: state dir first, then root (pure)."""

from __future__ import annotations

from loopphase.core.files import candidates as status_file_candidates
from loopphase.core.files import resolve as resolve_status_file


def test_candidates() -> None:
    assert status_file_candidates("machine-docs", "S.md") == ["machine-docs/S.md", "S.md"]
    assert status_file_candidates("machine-docs/", "./S.md") == ["machine-docs/S.md", "S.md"]
    assert status_file_candidates("", "S.md") == ["S.md"]
    assert status_file_candidates(".", "S.md") == ["S.md"]
    assert status_file_candidates("docs", "../S.md") == []


def test_resolve_prefers_state_dir_and_skips_absent() -> None:
    files = {"machine-docs/S.md": "state", "S.md": "root"}
    assert resolve_status_file(files, "machine-docs", "S.md") == ("machine-docs/S.md", "state")
    files = {"machine-docs/S.md": None, "S.md": "root"}
    assert resolve_status_file(files, "machine-docs", "S.md") == ("S.md", "root")
    assert resolve_status_file({"S.md": None}, "machine-docs", "S.md") == (None, None)
    assert resolve_status_file({}, "machine-docs", "S.md") == (None, None)

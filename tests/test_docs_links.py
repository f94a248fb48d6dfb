"""README.md and docs/ stand alone: every link resolves to a file inside the repository."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINK_RE = re.compile(r"\]\(([^)\s]+)\)|<(https?://[^>]+)>")


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_every_link_stays_inside_the_repository() -> None:
    problems = []
    for doc in doc_files():
        text = doc.read_text(encoding="utf-8")
        for match in LINK_RE.finditer(text):
            target = match.group(1) or match.group(2)
            if re.match(r"[a-z][a-z0-9+.-]*:", target):
                problems.append(f"{doc.name}: external link {target}")
                continue
            path = (doc.parent / target.split("#", 1)[0]).resolve()
            if not path.is_relative_to(ROOT) or not path.exists():
                problems.append(f"{doc.name}: {target} is not a file in the repository")
        if "../shared" in text or "/work/shared" in text:
            problems.append(f"{doc.name}: refers to the shared design notes outside the repository")
    assert problems == []


def test_operations_and_troubleshooting_pages_exist_and_are_linked() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for page in ("design.md", "operations.md", "troubleshooting.md"):
        assert (ROOT / "docs" / page).exists(), page
        assert f"docs/{page}" in readme, page


def test_troubleshooting_covers_every_condition_reason_in_the_core() -> None:
    """Every PascalCase word in a ``set_condition(...)`` call of the core (the condition types
    and the reasons) appears on the troubleshooting page."""
    words: set[str] = set()
    for path in (ROOT / "operator/loopphase/core").glob("*.py"):
        for call in re.findall(r"set_condition\((.*?)now\)", path.read_text(encoding="utf-8"), re.S):
            words |= set(re.findall(r'"([A-Z][a-z]+(?:[A-Z][a-z]+)+)"', call))
    assert {"SequenceComplete", "UsageLimitWindow", "PhaseDone"} <= words  # the scan finds them
    text = (ROOT / "docs" / "troubleshooting.md").read_text(encoding="utf-8")
    assert sorted(w for w in words if w not in text) == []

"""Options shared by every test directory."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--record-screens", action="store_true", default=False,
        help="real-CLI tests (re)write the screens they see to tests/fixtures/screens/",
    )

"""The kinds of usage limit (api.status.LimitClass) and which banner rule names which kind."""

from __future__ import annotations

from typing import get_args

from loopphase.api.status import LimitClass

LIMIT_CLASSES: tuple[str, ...] = get_args(LimitClass)

# Rule name → class, for the rules whose words fix the class.
_RULE_CLASS: dict[str, LimitClass] = {
    "limit.claude-usage": "session",
    "limit.claude-epoch": "session",
    "limit.claude-5h": "session",
    "limit.session": "session",
    "limit.daily": "session",
    "limit.hit-session": "session",
    "limit.hit-claude-5h": "session",
    "limit.weekly": "weekly",
    "limit.hit-weekly": "weekly",
    "limit.extra-usage": "spend",
    "limit.spend": "spend",
}


def limit_class_of(rule: str) -> LimitClass:
    """The class a hard-limit rule names; "unknown" when its words do not say."""
    return _RULE_CLASS.get(rule, "unknown")

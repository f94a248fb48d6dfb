"""User-supplied regular expressions (``spec.handoff.*Pattern``), run in linear time.

Spec patterns are matched against commit subjects that agents write, inside the operator's
event loop. Python's backtracking engine can take seconds on ``^(a+)+$`` and a 30-character
subject; RE2 (the maintained ``google-re2`` binding) guarantees time linear in the subject, so
no pattern a user writes can stall a tick. RE2 has no backreferences or lookaround: a pattern
that needs them is refused at validation with the reason.

Subjects are also capped at ``SUBJECT_MAX`` characters before matching (a handoff marker sits
at the start of a subject; nothing after the first kilobyte changes a verdict worth having).
"""

from __future__ import annotations

from typing import Protocol

import re2

from loopphase.api.base import shown

SUBJECT_MAX = 1000
# RE2's own memory budget for one compiled program (bytes); its default is 8 MiB. A spec
# pattern is a short marker: 1 MiB refuses absurd repetition counts without a giant DFA.
PATTERN_MAX_MEM = 1 << 20


class CompiledPattern(Protocol):
    def search(self, text: str) -> object | None: ...


class PatternError(ValueError):
    """The pattern cannot be compiled by RE2; the message says why and what to use instead."""


def compile_pattern(pattern: str, *, ignore_case: bool = False) -> CompiledPattern:
    """Compile ``pattern`` with RE2. Raises PatternError (a ValueError) on unsupported syntax."""
    options = re2.Options()
    options.case_sensitive = not ignore_case
    options.log_errors = False
    options.max_mem = PATTERN_MAX_MEM
    try:
        return re2.compile(pattern, options)
    except re2.error as err:
        detail = err.args[0].decode("utf-8", "replace") if err.args and isinstance(
            err.args[0], bytes) else str(err)
        raise PatternError(
            f"{shown(pattern)} is not a supported regular expression ({detail}); patterns use RE2 "
            "syntax (linear time): no backreferences (\\1) and no lookaround ((?=…), (?!…))"
        ) from err


def capped(subject: str) -> str:
    """The part of a subject that patterns see."""
    return subject[:SUBJECT_MAX]

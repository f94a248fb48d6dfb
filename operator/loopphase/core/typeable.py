"""What may be typed into an agent: one definition for spec validation and the shim.

A text the supervisor types (ping, probe, nudge, continuation, wake prompt) goes through the
shim's ``/v1/send`` into a terminal. Spec validation must refuse exactly what the shim would
refuse, or a spec passes validation and every ping of it fails at 3 am.
"""

from __future__ import annotations

import re

MAX_TYPED_CHARS = 4000
# C0 controls except TAB, DEL (a backspace on most terminals), and C1 controls (0x80-0x9f:
# 8-bit CSI and friends that a terminal may execute).
_UNTYPEABLE_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def untypeable_reason(text: str) -> str | None:
    """Why ``text`` cannot be typed into an agent, or None when it can.

    Rules: non-empty after trimming; one line; at most ``MAX_TYPED_CHARS`` characters; no C0/C1
    control characters or DEL (TAB is allowed).
    """
    if not text.strip():
        return "text must be a non-empty string"
    if "\n" in text or "\r" in text:
        return "text must be a single line"
    if len(text) > MAX_TYPED_CHARS:
        return f"text is {len(text)} characters; at most {MAX_TYPED_CHARS} can be typed"
    bad = _UNTYPEABLE_RE.search(text)
    if bad:
        return (
            f"text contains the control character U+{ord(bad.group(0)):04X} at offset "
            f"{bad.start()}: terminals act on control characters instead of showing them"
        )
    return None

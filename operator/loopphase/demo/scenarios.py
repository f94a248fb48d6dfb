"""The demo's simulated agents: three phases that show every mechanism once.

p1 handoff:  the adversary starts on an expired login (NeedsAttention, LoginRequired: no heal,
             the claim ping waits) until the login is fixed; builder claims -> adversary
             pinged, reviews PASS -> builder pinged, writes DONE.
p2 limits:   the builder hits a usage limit (exact epoch reset 20 s ahead) while the adversary
             declares a wait; both agents share one account, so the builder's limit holds the
             adversary too (an account-wide hold); the builder drops an inbox note; window
             armed, quiet, probed, lifted, zero kills; then the claim/review handshake and DONE.
p3 healing:  the adversary wedges on a fatal API error (-> cold restart), the builder goes
             silent (-> nudge, then a warm restart); both recover and finish the sequence.
"""

from __future__ import annotations

BUILDER = """
phases:
  p1-handoff:
    - work: {seconds: 3}
    - git: {commit: "claim(p1-gate): widget implemented", files: {"src/widget.txt": "widget v1\\n"}, push: true}
    - wait_input: {match: "verdict|review", timeout: 120}
    - work: {seconds: 2}
    - append_done: {commit: "done(p1): all DoD items verified", push: true}
  p2-limits:
    - work: {seconds: 2}
    - banner: {style: epoch, reset_in: 20}
    - work: {seconds: 2}
    - write_file: {path: machine-docs/ADVERSARY-INBOX.md, content: "Please also check the limits doc.\\n", commit: "inbox: note for the adversary", push: true}
    - work: {seconds: 2}
    - git: {commit: "claim(p2-gate): resumed after the limit", files: {"src/limits.txt": "ok\\n"}, push: true}
    - wait_input: {match: "verdict|review", timeout: 180}
    - append_done: {commit: "done(p2)", push: true}
  p3-healing:
    - work: {seconds: 2}
    - idle: {seconds: 3600}
    - work: {seconds: 2}
    - git: {commit: "claim(p3-gate): healed and done", files: {"src/heal.txt": "ok\\n"}, push: true}
    - wait_input: {match: "verdict|review", timeout: 180}
    - append_done: {commit: "done(p3)", push: true}
"""

# What Claude Code draws after a successful /login, long enough to scroll the expired-login
# line out of the region the classifier reads (as the real session's output would).
LOGIN_FIXED = "\\n".join(
    ["Login successful. Welcome back!"]
    + [f"  ⎿  restored session state ({i}/14)" for i in range(1, 15)]
)

ADVERSARY = """
phases:
  p1-handoff:
    - say: {text: "Invalid API key · Please run /login"}
    - idle: {seconds: 12}
    - say: {text: "@LOGIN_FIXED@"}
    - work: {seconds: 1}
    - wait_input: {match: "CLAIM", timeout: 120}
    - work: {seconds: 2}
    - git: {commit: "review(p1-gate): PASS", files: {"machine-docs/REVIEW-p1-handoff.md": "PASS\\n"}, push: true}
  p2-limits:
    - wait_until: {seconds: 35}
    - wait_input: {match: "INBOX", timeout: 240}
    - work: {seconds: 1}
    - delete_file: {path: machine-docs/ADVERSARY-INBOX.md, commit: "inbox: consumed", push: true}
    - wait_input: {match: "CLAIM", timeout: 240}
    - git: {commit: "review(p2-gate): PASS", files: {"machine-docs/REVIEW-p2-limits.md": "PASS\\n"}, push: true}
  p3-healing:
    - work: {seconds: 1}
    - fatal: {}
    - work: {seconds: 2}
    - wait_until: {seconds: 40}
    - wait_input: {match: "CLAIM", timeout: 240}
    - work: {seconds: 1}
    - git: {commit: "review(p3-gate): PASS", files: {"machine-docs/REVIEW-p3-healing.md": "PASS\\n"}, push: true}
""".replace("@LOGIN_FIXED@", LOGIN_FIXED)

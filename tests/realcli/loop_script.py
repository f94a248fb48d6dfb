"""The scripted model's side of a two-role loop on real Claude Code (shared by the realcli loop
test and tests/runner/test_examples.py).

Per phase the builder's Bash tool commits and pushes a claim when its kickoff arrives, then
``## DONE`` once the supervisor pings it with the adversary's verdict; the adversary's Bash tool
pushes a PASS review once it is pinged with the claim. The two roles of one `loopphase run`
share one environment, so each is told apart by its working directory in the system prompt.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

PUSH = "git push -q origin HEAD:main"


def step(phase: str, role: str, what: str) -> str:
    """One shell line the model asks the CLI to run (pull first: the other role pushes too)."""
    state = "machine-docs"
    if what == "claim":
        body = (f"mkdir -p src && echo '{phase} works' > src/{phase}.txt && git add -A && "
                f"git commit -qm 'claim({phase}-gate): {phase} implemented'")
    elif what == "review":
        body = (f"echo 'PASS: {phase} verified' > {state}/REVIEW-{phase}.md && git add -A && "
                f"git commit -qm 'review({phase}-gate): PASS'")
    else:
        body = (f"echo '## DONE' >> {state}/STATUS-{phase}.md && git add -A && "
                f"git commit -qm 'done({phase}): all DoD items verified'")
    return f"git pull -q --rebase origin main && {body} && {PUSH} && echo pushed-{what}-{phase}"


def script(phases: list[str], workdirs: dict[str, Path]) -> str:
    builder: list[dict] = []
    adversary: list[dict] = []
    for phase in phases:
        builder += [
            {"when": f"PHASE {phase} ", "bash": step(phase, "builder", "claim")},
            {"text": f"Claimed the {phase} gate; waiting for the review."},
            {"when": "verdict or finding", "bash": step(phase, "builder", "done")},
            {"text": f"{phase} is DONE."},
        ]
        adversary += [
            {"when": f"PHASE {phase} ", "text": f"Adversary ready for {phase}; waiting for a claim."},
            {"when": "gate CLAIM", "bash": step(phase, "adversary", "review")},
            {"text": f"Reviewed {phase}: PASS."},
        ]
    return yaml.safe_dump({"agents": {
        "loop-builder": {"system_match": re.escape(str(workdirs['builder'])) + r"\b", "turns": builder},
        "loop-adversary": {"system_match": re.escape(str(workdirs['adversary'])) + r"\b", "turns": adversary},
    }})


def git_log(bare: Path) -> list[str]:
    out = subprocess.run(["git", "--git-dir", str(bare), "log", "--format=%an|%s", "main"],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    return out.splitlines()[::-1]

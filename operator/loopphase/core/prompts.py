"""Kickoff and continuation prompts (pure text building)."""

from __future__ import annotations

from loopphase.api.spec import LoopPhaseSpec, Role, render_text


def phase_preamble(spec: LoopPhaseSpec, phase_index: int, role: Role) -> str:
    phase = spec.phases[phase_index]
    pid, state_dir = phase.id, spec.repo.state_dir
    total = len(spec.phases)
    return (
        f"*** LoopPhase: PHASE {pid} ({phase_index + 1}/{total}), role {role} ***\n"
        f"SINGLE SOURCE OF TRUTH for this phase: {phase.plan}. Read it in full now; it defines "
        "this phase's mission and Definition of Done.\n"
        f"Track loop state in phase-namespaced files under {state_dir}/: {phase.status_file}, "
        f"BACKLOG-{pid}.md, REVIEW-{pid}.md, JOURNAL-{pid}.md.\n"
        f"Done for this phase = the Builder writes a line '{spec.done.marker}' to "
        f"{state_dir}/{phase.status_file} and pushes it, ONLY after every Definition-of-Done "
        f"item is Adversary-verified with a fresh PASS in REVIEW-{pid}.md.\n"
        f"Hand off through commits on {spec.repo.branch}: the Builder's gate claims start with "
        "'claim(', the Adversary's verdicts with 'review('. Before sleeping on purpose, print "
        "a line 'WAITING-UNTIL: <ISO-8601 time>'.\n"
    )


def kickoff(spec: LoopPhaseSpec, phase_index: int, role: Role, role_prompt: str) -> str:
    text = phase_preamble(spec, phase_index, role)
    if role_prompt.strip():
        text += "\n=== standing role & rules ===\n" + role_prompt.strip() + "\n"
    return text


def continuation(spec: LoopPhaseSpec, phase_index: int, role: Role) -> str:
    return render_text(spec.texts.continuation, role=role, phase=spec.phases[phase_index].id,
                       inbox="", kickoff="")

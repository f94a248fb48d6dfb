"""Per-backend adapters: the agent's argv LIST (never a shell string) and how to talk to it.

claude   cold: claude [--model M] --dangerously-skip-permissions -- <kickoff>
         warm: claude (--resume <session id> | --continue) [--model M] [...] -- <continuation>
         ("--" ends the options: a prompt starting with "--settings=..." is a prompt, not a
         flag; a session id not shaped like Claude Code's UUIDs is never passed to --resume;
         a prompt over ``ARGV_PROMPT_MAX`` bytes goes to a file the argv line points at)
         CLAUDE_CONFIG_DIR is the role's own (``claude_setup``); as root IS_SANDBOX=1 is set
         (Claude Code refuses --dangerously-skip-permissions as root outside a sandbox, and
         without it starts in auto mode, whose safety check only Anthropic's servers run)
opencode cold: opencode attach <server> --dir <workdir>        then the bootstrap line is sent
         warm: opencode attach <server> --dir <workdir> --continue, then the continuation line
         (a multi-line kickoff/continuation is written to a file and the typed line names it)
         ``opencode attach`` has no --model flag: the model is the server's (configure it in
         the server's opencode.json / ``opencode serve`` environment); the adapter logs this.
sim      <python> -m loopphase.sim.agent --scenario F --role R --phase P --workdir W
         --input-log L [--model M] [--continue] -- <prompt>

A warm start always carries a non-empty continuation prompt (REFERENCE.md lesson 13).
"""

from __future__ import annotations

import logging
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from loopphase.shim.claude_setup import seed_claude_home, xdg_home_env

log = logging.getLogger(__name__)

Mode = Literal["warm", "cold"]
BACKENDS = ("claude", "opencode", "sim")
DEFAULT_SUBMIT = {"claude": "Enter", "opencode": "C-m", "sim": "Enter"}
# Linux refuses one argv string over MAX_ARG_STRLEN (128 KiB) and the whole argv+env over
# ARG_MAX: a longer prompt would make exec fail after the old agent was already stopped.
ARGV_PROMPT_MAX = 64 * 1024
# Claude Code's session ids are UUIDs; the hook events file they come from is writable by the
# agent, so anything else (e.g. "--settings=/tmp/x.json") is refused, not passed to --resume.
SESSION_ID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")


class LaunchError(ValueError):
    """The agent cannot be started as asked (e.g. warm without a continuation prompt)."""


@dataclass(frozen=True)
class AgentConfig:
    role: str
    backend: str
    workdir: str
    state_dir: Path
    model: str | None = None
    scenario: str | None = None
    opencode_server: str | None = None
    bootstrap_text: str | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def agent_home(self) -> Path:
        """The role's own CLI configuration (never the user's $HOME): see claude_setup."""
        return self.state_dir / "agent-home"

    @property
    def hook_events_file(self) -> Path:
        return self.state_dir / "hook-events.jsonl"

    @property
    def sim_input_log(self) -> Path:
        """--env LOOPPHASE_SIM_INPUT_LOG=... wins; else <state-dir>/sim-input.jsonl."""
        given = self.env.get("LOOPPHASE_SIM_INPUT_LOG")
        return Path(given) if given else self.state_dir / "sim-input.jsonl"


@dataclass(frozen=True)
class Launch:
    argv: list[str]
    env: dict[str, str]
    submit_key: str
    after_start_line: str | None = None  # typed into the agent once it is up (opencode)


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def valid_session_id(session_id: str | None) -> str | None:
    """``session_id`` if it has the shape of a Claude Code session id, else None (logged)."""
    if session_id is None or SESSION_ID_RE.match(session_id):
        return session_id
    log.warning("ignoring a session id that is not a UUID (%r): resuming with --continue",
                session_id[:80])
    return None


def claude_argv(mode: Mode, prompt: str, model: str | None, session_id: str | None) -> list[str]:
    argv = ["claude"]
    if mode == "warm":
        resume = valid_session_id(session_id)
        argv += ["--resume", resume] if resume else ["--continue"]
    if model:
        argv += ["--model", model]
    argv += ["--dangerously-skip-permissions", "--", prompt]
    return argv


def opencode_argv(server: str, workdir: str, mode: Mode) -> list[str]:
    argv = ["opencode", "attach", server, "--dir", workdir]
    if mode == "warm":
        argv.append("--continue")
    return argv


def sim_argv(
    cfg: AgentConfig, phase_id: str | None, mode: Mode, prompt: str
) -> list[str]:
    if not cfg.scenario:
        raise LaunchError("backend sim needs --scenario")
    argv = [
        sys.executable, "-m", "loopphase.sim.agent",
        "--scenario", cfg.scenario,
        "--role", cfg.role,
        "--phase", phase_id or "default",
        "--workdir", cfg.workdir,
        "--input-log", str(cfg.sim_input_log),
    ]
    if cfg.model:
        argv += ["--model", cfg.model]
    if mode == "warm":
        argv.append("--continue")
    argv += ["--", prompt]
    return argv


def argv_prompt(cfg: AgentConfig, mode: Mode, phase_id: str | None, prompt: str) -> str:
    """The prompt as one argv string: itself, or, when over ``ARGV_PROMPT_MAX`` bytes, a line
    naming a file that holds it (written before anything is stopped)."""
    if len(prompt.encode("utf-8")) <= ARGV_PROMPT_MAX:
        return prompt
    line = prompt_file_line(cfg, mode, phase_id, prompt)
    log.info("prompt is %d bytes: passed by file (%s)", len(prompt.encode("utf-8")), line)
    return line


def prompt_file_line(cfg: AgentConfig, mode: Mode, phase_id: str | None, prompt: str) -> str:
    """opencode takes one typed line: a multi-line prompt goes to a file the line points at.

    The file is ``<state-dir>/LOOPPHASE-KICKOFF-<phase>.md`` (cold) or
    ``LOOPPHASE-CONTINUE-<phase>.md`` (warm), written before each start.
    """
    kind = "KICKOFF" if mode == "cold" else "CONTINUE"
    path = cfg.state_dir / f"LOOPPHASE-{kind}-{phase_id or 'default'}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(prompt, encoding="utf-8")
    return f"Read {path} in full and follow it now."


def build_launch(
    cfg: AgentConfig,
    mode: Mode,
    prompt: str,
    phase_index: int | None,
    phase_id: str | None,
    session_id: str | None,
) -> Launch:
    """The argv, environment and submit key for one start. ``prompt`` must be non-empty."""
    if not prompt.strip():
        what = "continuation" if mode == "warm" else "kickoff"
        raise LaunchError(f"{mode} start needs a non-empty {what} prompt")
    env = dict(cfg.env)
    env["LOOPPHASE_ROLE"] = cfg.role
    if phase_id:
        env["LOOPPHASE_PHASE"] = phase_id
    if phase_index is not None:
        env["LOOPPHASE_PHASE_INDEX"] = str(phase_index)
    submit = DEFAULT_SUBMIT[cfg.backend]
    if cfg.backend == "claude":
        agent_env = {**os.environ, **env}
        env.update(seed_claude_home(cfg.agent_home, cfg.workdir, cfg.hook_events_file,
                                    agent_env, Path.home()))
        env.update(xdg_home_env(cfg.agent_home))
        if _is_root() and agent_env.get("IS_SANDBOX") != "1":
            log.warning("running as root: IS_SANDBOX=1 so Claude Code accepts "
                        "--dangerously-skip-permissions (run as a normal user to avoid this)")
            env["IS_SANDBOX"] = "1"
        prompt = argv_prompt(cfg, mode, phase_id, prompt)
        return Launch(claude_argv(mode, prompt, cfg.model, session_id), env, submit)
    if cfg.backend == "opencode":
        if not cfg.opencode_server:
            raise LaunchError("backend opencode needs --opencode-server")
        if cfg.model:
            log.warning("opencode attach cannot take a model: %s must be the server's model", cfg.model)
        env.update(xdg_home_env(cfg.agent_home))
        line = prompt if mode == "warm" else (cfg.bootstrap_text or prompt)
        if "\n" in line.strip():
            line = prompt_file_line(cfg, mode, phase_id, line)
        return Launch(opencode_argv(cfg.opencode_server, cfg.workdir, mode), env, submit, line.strip())
    if cfg.backend == "sim":
        prompt = argv_prompt(cfg, mode, phase_id, prompt)
        return Launch(sim_argv(cfg, phase_id, mode, prompt), env, submit)
    raise LaunchError(f"unknown backend {cfg.backend!r} (known: {', '.join(BACKENDS)})")

"""Each role's own agent home: Claude Code and opencode configured there, never in the user's.

Layout (``home`` is ``<shim state dir>/agent-home``: ``.loopphase/<run>/shim-state/<role>/``
locally, the role's PVC in a pod)::

    home/claude/             CLAUDE_CONFIG_DIR: .claude.json (onboarding done, the workdir
                             trusted, bypass mode accepted, the API key approved),
                             settings.json (the repo's .mcp.json servers approved,
                             hooks -> this role's events file), sessions
    home/xdg/{data,state}/   XDG_DATA_HOME, XDG_STATE_HOME for both CLIs (opencode keeps its
                             sessions and logs there; Claude Code registers a URL handler
                             under XDG_DATA_HOME/applications). XDG_CONFIG_HOME and
                             XDG_CACHE_HOME stay the user's: git reads its config and
                             credential-cache socket there.

The user's login is used by reference and never written: ``ANTHROPIC_API_KEY`` /
``CLAUDE_CODE_OAUTH_TOKEN`` / ``ANTHROPIC_AUTH_TOKEN`` pass through the environment; when none
is set and the user has a Claude Code login file (``$CLAUDE_CONFIG_DIR`` or
``~/.claude/.credentials.json``), the role's config dir gets a symlink to it. Nothing under
the user's ``$HOME`` is created or changed (issue: a run used to rewrite ``~/.claude.json`` and
``~/.claude/settings.json``, so every later interactive ``claude`` ran LoopPhase's hooks).
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

HOOK_EVENTS = ("SessionStart", "Stop", "StopFailure", "Notification")
LOGIN_ENV = ("ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_AUTH_TOKEN")
CREDENTIALS_FILE = ".credentials.json"
XDG_DIRS = {"XDG_DATA_HOME": "data", "XDG_STATE_HOME": "state"}


def _load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("%s unreadable (%s); rewriting it", path, exc)
        return {}
    return data if isinstance(data, dict) else {}


def _save(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)


def hook_command(events_file: Path) -> str:
    """The hook command line (Claude Code runs it through a shell: every part is quoted)."""
    return " ".join(
        shlex.quote(part) for part in (sys.executable, "-m", "loopphase.shim.hook", str(events_file))
    )


def claude_dir(home: Path) -> Path:
    return home / "claude"


def user_credentials(env: Mapping[str, str], user_home: Path) -> Path | None:
    """The user's Claude Code login file, if any (read-only use: it is linked, never written)."""
    own = env.get("CLAUDE_CONFIG_DIR")
    for base in ([Path(own)] if own else []) + [user_home / ".claude"]:
        candidate = base / CREDENTIALS_FILE
        if candidate.is_file():
            return candidate
    return None


def seed_claude_home(
    home: Path, workdir: str, events_file: Path, env: Mapping[str, str], user_home: Path
) -> dict[str, str]:
    """Seed ``home/claude`` for one role; the environment to start ``claude`` with.

    ``env`` is the environment the agent will get (its login variables are read, not copied
    anywhere); ``user_home`` is where the user's own login file may be. Existing content of
    the role's files is kept and merged. Returns ``{"CLAUDE_CONFIG_DIR": ...}``.
    """
    config_dir = claude_dir(home)
    config_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    config_path = config_dir / ".claude.json"
    config = _load(config_path)
    config["hasCompletedOnboarding"] = True
    config["bypassPermissionsModeAccepted"] = True
    projects = config.setdefault("projects", {})
    project = projects.setdefault(str(Path(workdir).resolve()), {})
    project["hasTrustDialogAccepted"] = True
    project["hasCompletedProjectOnboarding"] = True
    api_key = env.get("ANTHROPIC_API_KEY", "")
    if api_key:
        responses = config.setdefault("customApiKeyResponses", {"approved": [], "rejected": []})
        approved = responses.setdefault("approved", [])
        if api_key[-20:] not in approved:
            approved.append(api_key[-20:])
    _save(config_path, config)

    settings_path = config_dir / "settings.json"
    settings = _load(settings_path)
    settings["skipDangerousModePermissionPrompt"] = True
    # The repo's .mcp.json servers are approved up front: otherwise the MCP-server approval
    # dialog waits for an answer and the agent never starts working (issue 11, fault 4).
    settings["enableAllProjectMcpServers"] = True
    hooks = settings.setdefault("hooks", {})
    command = hook_command(events_file)
    for event in HOOK_EVENTS:
        hooks[event] = [{"hooks": [{"type": "command", "command": command}]}]
    _save(settings_path, settings)

    link = config_dir / CREDENTIALS_FILE
    if not any(env.get(name) for name in LOGIN_ENV) and not link.exists():
        source = user_credentials(env, user_home)
        if source is not None and source.resolve() != link.resolve():
            link.unlink(missing_ok=True)  # a dangling link from an earlier run
            link.symlink_to(source)
            log.info("role login: %s links to the user's %s (read by reference)", link, source)
    log.info("seeded the role's Claude Code home %s (hooks -> %s)", config_dir, events_file)
    return {"CLAUDE_CONFIG_DIR": str(config_dir)}


def xdg_home_env(home: Path) -> dict[str, str]:
    """XDG_DATA_HOME and XDG_STATE_HOME under the role's home (created), for either CLI."""
    env: dict[str, str] = {}
    for name, sub in XDG_DIRS.items():
        path = home / "xdg" / sub
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        env[name] = str(path)
    return env

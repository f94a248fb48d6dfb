"""Pre-seed Claude Code's config so first-run dialogs do not swallow typed input.

~/.claude.json: onboarding done, the workdir trusted, bypass-permissions mode accepted (and the
API key approved when one is in the environment). ~/.claude/settings.json: the project's
.mcp.json servers approved (``enableAllProjectMcpServers``), and hooks for
SessionStart, Stop, StopFailure and Notification that append each event to the shim's events
file. Existing content is kept and merged.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

HOOK_EVENTS = ("SessionStart", "Stop", "StopFailure", "Notification")


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
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def hook_command(events_file: Path) -> str:
    """The hook command line (Claude Code runs it through a shell: every part is quoted)."""
    return " ".join(
        shlex.quote(part) for part in (sys.executable, "-m", "loopphase.shim.hook", str(events_file))
    )


def seed_claude_config(home: Path, workdir: str, events_file: Path) -> None:
    config_path = home / ".claude.json"
    config = _load(config_path)
    config["hasCompletedOnboarding"] = True
    config["bypassPermissionsModeAccepted"] = True
    projects = config.setdefault("projects", {})
    project = projects.setdefault(str(Path(workdir).resolve()), {})
    project["hasTrustDialogAccepted"] = True
    project["hasCompletedProjectOnboarding"] = True
    api_key = os.environ.get("ANTHROPIC_API_KEY", "")
    if api_key:
        responses = config.setdefault("customApiKeyResponses", {"approved": [], "rejected": []})
        approved = responses.setdefault("approved", [])
        if api_key[-20:] not in approved:
            approved.append(api_key[-20:])
    _save(config_path, config)

    settings_path = home / ".claude" / "settings.json"
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
    log.info("seeded %s and %s (hooks -> %s)", config_path, settings_path, events_file)

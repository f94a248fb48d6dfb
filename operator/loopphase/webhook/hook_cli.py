"""``loopphase hook install REPO``: make a repository send push webhooks to a LoopPhase.

Writes ``REPO``'s ``post-receive`` hook (see ``hook_script``): after every push it POSTs a
GitHub-format, HMAC-signed push event to ``--url`` (a ``loopphase run --webhook-listen``
receiver, or the operator's endpoint), so the loop reacts at push speed without polling.
The secret file is created (random, mode 0600) when it does not exist yet; give the same file
to ``loopphase run --webhook-secret-file``.
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
from pathlib import Path

from loopphase.cli import plain
from loopphase.webhook.hook_script import MARKER, render

DEFAULT_URL = "http://127.0.0.1:9797/webhook"
GIT_TIMEOUT = 20


class HookError(RuntimeError):
    """The hook cannot be installed; the message says why and what to do."""


def hooks_dir(repo: Path) -> Path:
    """The repository's hooks directory (honours ``core.hooksPath``)."""
    try:
        out = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--path-format=absolute", "--git-path", "hooks"],
            capture_output=True, text=True, timeout=GIT_TIMEOUT, check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise HookError(f"cannot run git in {repo}: {err}") from err
    if out.returncode != 0:
        raise HookError(f"{repo} is not a git repository: {out.stderr.strip()}")
    return Path(out.stdout.strip())


def ensure_secret(path: Path) -> bool:
    """Create ``path`` with a random secret (0600) if missing; True when created."""
    if path.exists():
        if not path.read_bytes().strip():
            raise HookError(f"--secret-file {path} is empty; put the webhook secret in it")
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32) + "\n")
    return True


def install(repo: Path, *, url: str, secret_file: Path, repo_urls: list[str] | None = None,
            timeout: float = 2.0, force: bool = False, output: Path | None = None) -> Path:
    """Write the hook (``output``, default ``<hooks>/post-receive``); returns its path."""
    if not url.startswith(("http://", "https://")):
        raise HookError(f"--url {url!r} must be an http:// or https:// URL")
    if not 0 < timeout <= 30:
        raise HookError("--timeout must be in (0, 30] seconds: the pusher waits for the hook")
    target = output or hooks_dir(repo) / "post-receive"
    if target.exists() and MARKER not in target.read_text(errors="replace") and not force:
        raise HookError(f"{target} exists and was not written by loopphase: move it aside "
                        "(or call it from your hook), or pass --force to replace it")
    secret_path = secret_file.absolute()
    urls = repo_urls or [str(repo.absolute())]
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".loopphase-tmp")
    tmp.write_text(render(url, str(secret_path), urls, timeout))
    tmp.chmod(0o755)
    tmp.replace(target)
    return target


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="loopphase hook", description=plain(__doc__),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                help="install (the only one; `loopphase hook install --help`)")
    inst = sub.add_parser("install", help="write REPO's post-receive hook")
    inst.add_argument("repo", type=Path, help="the repository agents push to (bare or not)")
    inst.add_argument("--url", default=DEFAULT_URL, help=f"the receiver (default {DEFAULT_URL})")
    inst.add_argument("--secret-file", type=Path, required=True,
                      help="the shared secret (created, random, when missing)")
    inst.add_argument("--repo-url", action="append", default=[],
                      help="a URL LoopPhases name this repository by (repeatable; default: "
                           "its absolute path), e.g. http://127.0.0.1:8080/repo.git")
    inst.add_argument("--timeout", type=float, default=2.0,
                      help="seconds per webhook request (default 2; the pusher waits for it)")
    inst.add_argument("--force", action="store_true", help="replace a post-receive hook not "
                      "written by loopphase")
    inst.add_argument("--output", type=Path, help="write the script here instead of "
                      "hooks/post-receive (to call it from a hook of your own)")
    args = parser.parse_args(argv)
    try:
        created = ensure_secret(args.secret_file)
        path = install(args.repo, url=args.url, secret_file=args.secret_file,
                       repo_urls=args.repo_url, timeout=args.timeout, force=args.force,
                       output=args.output)
    except (HookError, OSError) as err:
        print(f"loopphase hook install: {err}", file=sys.stderr)
        return 1
    if created:
        print(f"created a random secret in {args.secret_file} (mode 0600)")
    print(f"installed {path}: pushes to {args.repo} now POST to {args.url}")
    print(f"run the loop with: loopphase run SPEC --webhook-listen HOST:PORT "
          f"--webhook-secret-file {args.secret_file}")
    return 0

"""One key per repository, whatever URL form names it (https, ssh, scp-like, .git or not).

``repo_key`` is what the receiver matches a push payload's URLs against a LoopPhase's
``spec.repo.url`` with. A false match only costs one extra observe (the payload is never
trusted for content), so the key is deliberately forgiving: scheme, credentials, port, a
trailing ``.git`` or ``/`` and letter case are ignored (GitHub, GitLab, Gitea and Forgejo treat
owner and repository names case-insensitively).
"""

from __future__ import annotations

import os
import re
from urllib.parse import unquote, urlsplit

_SCP_LIKE = re.compile(r"^(?:[^@/\s]+@)?(?P<host>[^:/\s]+):(?P<path>(?!//).*)$")


def _clean_path(path: str) -> str:
    path = unquote(path).strip("/")
    path = re.sub(r"/+", "/", path)
    if path.endswith(".git"):
        path = path[: -len(".git")]
    return path.strip("/").lower()


def repo_key(url: str) -> str:
    """``host/owner/repo`` for network URLs, ``local:/abs/path`` for local repositories.

    >>> repo_key("https://user:tok@GitHub.com:443/Org/Repo.git/")
    'github.com/org/repo'
    >>> repo_key("git@github.com:org/repo.git")
    'github.com/org/repo'
    >>> repo_key("ssh://git@github.com:22/org/repo")
    'github.com/org/repo'
    >>> repo_key("file:///srv/git/x.git")
    'local:/srv/git/x'
    """
    url = url.strip()
    if "://" in url:
        parts = urlsplit(url)
        if parts.scheme == "file":
            return "local:" + _local(unquote(parts.path))
        host = (parts.hostname or "").lower()
        return f"{host}/{_clean_path(parts.path)}"
    match = _SCP_LIKE.match(url)
    if match and not url.startswith(("/", ".")):
        return f"{match.group('host').lower()}/{_clean_path(match.group('path'))}"
    return "local:" + _local(url)


def _local(path: str) -> str:
    """An absolute, normalised local path without a trailing ``.git`` or ``/.git``."""
    clean = os.path.normpath(os.path.abspath(path))
    if clean.endswith("/.git"):
        clean = clean[: -len("/.git")]
    elif clean.endswith(".git"):
        clean = clean[: -len(".git")]
    return clean.lower()

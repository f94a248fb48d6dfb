"""Can this machine clone ``url`` at ``branch`` now? One ``git ls-remote --heads`` with a timeout.

Used before anything starts (``loopphase validate``, ``loopphase run``) and by the local runtime
while a role cannot start because of its repository. A failure is *lasting* when it will not
change without a human (no such repository, access refused, no such branch) and *transient*
when it may pass by itself (timeouts, DNS, a refused connection, a server error): lasting ones
are reported as NeedsAttention(CannotStart), transient ones back off as before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from loopphase.git.errors import GitRemoteError, GitTimeoutError
from loopphase.git.redact import redact_url
from loopphase.git.runner import GitRunner

PROBE_TIMEOUT = 20.0

# git's and its remote helpers' words for trouble that may pass by itself.
_TRANSIENT_RE = re.compile(
    r"timed out|could not resolve host|temporary failure in name resolution|connection refused|"
    r"failed to connect|network is unreachable|no route to host|connection reset|early eof|"
    r"the remote end hung up unexpectedly|returned error: 5\d\d|http/2 stream|gnutls|ssl_",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class BranchProbe:
    """The answer: ``field`` is the spec field to fix (``spec.repo.url`` or
    ``spec.repo.branch``), None when the branch can be cloned; ``lasting`` says a retry will not
    help; ``message`` is the whole reason with the fix (the URL redacted)."""

    field: str | None = None
    message: str = ""
    lasting: bool = False

    @property
    def ok(self) -> bool:
        return self.field is None

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else "reachable"


def is_transient(error: str) -> bool:
    """Whether a git error text describes trouble that may pass by itself (network, server)."""
    return bool(_TRANSIENT_RE.search(error))


def local_path(url: str) -> Path | None:
    """The directory a local repository URL names (a path or ``file://``), else None."""
    if url.startswith("file://"):
        return Path(url.removeprefix("file://"))
    if "://" in url:
        return None
    # scp-like ssh ("host:path", "user@host:path"): a colon before any slash
    head = url.split("/", 1)[0]
    if ":" in head:
        return None
    return Path(url)


def probe_branch(url: str, branch: str, *, timeout: float = PROBE_TIMEOUT,
                 env: dict[str, str] | None = None) -> BranchProbe:
    """Ask the remote for its branches (``git ls-remote --heads``, killed after ``timeout`` s)."""
    shown = redact_url(url)
    path = local_path(url)
    if path is not None and not path.exists():
        return BranchProbe(
            "spec.repo.url",
            f"{shown} does not exist on this machine (a local repository path): create it "
            f"(git init --bare {shown}, then push {branch!r} with the phase plans) or fix the URL",
            lasting=True,
        )
    runner = GitRunner(url, timeout=timeout, env=env)
    try:
        result = runner.check(["ls-remote", "--heads", url])
    except GitTimeoutError as err:
        return BranchProbe("spec.repo.url", f"cannot reach the repository: {err} (may be "
                           "temporary: check the network and the git server)")
    except GitRemoteError as err:
        text = str(err)
        if is_transient(text):
            return BranchProbe("spec.repo.url", f"cannot reach the repository: {text} (may be "
                               "temporary: check the network and the git server)")
        return BranchProbe(
            "spec.repo.url",
            f"cannot read the repository: {text}: the repository does not exist or refuses "
            "access; fix the URL, or the credentials (spec.repo.credentialsSecret on a cluster, "
            "your git credential helper or ssh key locally)",
            lasting=True,
        )
    heads = sorted(line.split("\t", 1)[1].removeprefix("refs/heads/")
                   for line in result.text.splitlines() if "\trefs/heads/" in line)
    if branch in heads:
        return BranchProbe()
    has = (f"its branches: {', '.join(heads[:10])}{', …' if len(heads) > 10 else ''}" if heads
           else "it has no branches yet (an empty repository)")
    return BranchProbe(
        "spec.repo.branch",
        f"branch {branch!r} does not exist on {shown} ({has}): the loop clones it and reads the "
        f"phase plans from it, so push it first (git push {shown} HEAD:{branch}) or name an "
        "existing branch",
        lasting=True,
    )

"""Checks a local repository (a path or ``file://`` URL) allows before a run: read with
GitPython (the repository's own config and object database; no network, no subprocess of ours).

- A NON-bare repository with the loop's branch checked out refuses every push to that branch
  ("refusing to update checked out branch") unless ``receive.denyCurrentBranch`` allows it
  (``ignore``, ``warn``, ``updateInstead``).
- Each phase's ``plan`` must be a file on the branch: the agents read it from their clone.

Each problem is ``(wire path, message with the fix)``. A repository GitPython cannot read is not
judged here (``probe_branch`` reports why it cannot be cloned).
"""

from __future__ import annotations

import logging
from pathlib import Path

import git

log = logging.getLogger(__name__)

PUSH_ALLOWED = frozenset({"ignore", "warn", "updateinstead", "false"})


def checked_out_branches(repo: git.Repo) -> set[str]:
    """The branches checked out in the repository's main worktree (detached HEAD: none)."""
    try:
        return set() if repo.head.is_detached else {repo.active_branch.name}
    except (TypeError, ValueError) as err:  # an unborn or odd HEAD
        log.debug("HEAD of %s unreadable: %s", repo.git_dir, err)
        return set()


def local_repo_problems(path: Path, branch: str, plans: list[str]) -> list[tuple[str, str]]:
    """Problems of the local repository at ``path`` for a loop on ``branch`` whose phases read
    ``plans`` (index = phase index). Empty when it will work (or cannot be read here)."""
    try:
        repo = git.Repo(path)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, OSError) as err:
        log.debug("not judging %s: %s", path, err)
        return []
    problems: list[tuple[str, str]] = []
    with repo:
        if not repo.bare and branch in checked_out_branches(repo):
            deny = str(repo.config_reader().get_value("receive", "denyCurrentBranch", "refuse"))
            if deny.lower() not in PUSH_ALLOWED:
                problems.append((
                    "spec.repo.url",
                    f"{path} is a non-bare repository with branch {branch!r} checked out: git "
                    "refuses every push to it (\"refusing to update checked out branch\"), so the "
                    f"agents' commits could never arrive. Use a bare repository (git clone --bare "
                    f"{path} {path}.git, then point spec.repo.url at {path}.git), or allow it with "
                    f"git -C {path} config receive.denyCurrentBranch updateInstead",
                ))
        try:
            tree = repo.commit(f"refs/heads/{branch}").tree
        except (git.BadName, ValueError) as err:
            log.debug("branch %s of %s unreadable: %s", branch, path, err)
            return problems  # probe_branch names a missing branch
        for index, plan in enumerate(plans):
            try:
                tree / plan
            except KeyError:
                problems.append((
                    f"spec.phases[{index}].plan",
                    f"{plan} is not on branch {branch!r} of {path}: the agents read the plan from "
                    f"their clone; commit it and push it to {branch!r}, or fix the path",
                ))
    return problems

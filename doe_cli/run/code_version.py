"""The code a suite runs: each repository's commit, fixed when the suite id is created.

A new suite id asks each repository (`git ls-remote` on the controller, whose credentials the hosts
use through agent forwarding) which commit its `version` names at that moment, and stores the
answer in the suite's `.doe/repositories.json`. Hosts check out that commit; a resume, even one that
sets hosts up again, reads it back, so all jobs of a suite run the same code although the branch moved.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from doe_cli.errors import DoeError, UserError
from doe_cli.fileio import write_atomic

_FULL_COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_ABBREVIATED_COMMIT = re.compile(r"[0-9a-f]{4,63}")
LS_REMOTE_TIMEOUT = 60


def stored_file(suite_dir: Path) -> Path:
    return suite_dir / ".doe" / "repositories.json"


def fixed_repositories(repositories: list[dict], suite_dir: Path, *, new: bool) -> list[dict]:
    """The repositories with the commit each is checked out at: asked for a new suite id, stored for a
    resumed one (a suite created before commits were stored keeps its group_vars versions)."""
    if not new:
        try:
            stored = json.loads(stored_file(suite_dir).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return repositories
        return stored if isinstance(stored, list) else repositories
    return [{**repo, "commit": commit_of(repo["repo"], repo["version"], index)}
            for index, repo in enumerate(repositories)]


def store(suite_dir: Path, repositories: list[dict]) -> None:
    write_atomic(stored_file(suite_dir), json.dumps(repositories, indent=1) + "\n")


def commit_of(repo: str, version: str, index: int) -> str:
    """The commit `version` (a branch, tag, HEAD or commit) names in `repo` now."""
    if _FULL_COMMIT.fullmatch(version):
        return version
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    # As the hosts' checkout does: a git server's host key is accepted the first time, never asked for.
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new")
    try:
        # The second pattern lists what an annotated tag points to.
        done = subprocess.run(["git", "ls-remote", repo, version, f"{version}^{{}}"], capture_output=True,
                              text=True, env=env, timeout=LS_REMOTE_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise DoeError(f"cannot ask {repo} which commit {version!r} is: {error}") from None
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()] or [f"git exit code {done.returncode}"]
        raise DoeError(f"cannot ask {repo} which commit {version!r} is: {lines[-1].strip()}")
    refs = {}
    for line in done.stdout.splitlines():
        commit, _, ref = line.partition("\t")
        refs[ref.strip()] = commit.strip()
    # A full ref name or HEAD, else a tag (the commit it points to), else a branch.
    for ref in (version, f"refs/tags/{version}^{{}}", f"refs/tags/{version}", f"refs/heads/{version}"):
        if ref in refs:
            return refs[ref]
    if _ABBREVIATED_COMMIT.fullmatch(version):
        return version  # an abbreviated commit: the hosts' checkout resolves it, and it never moves
    raise UserError(f"{repo} has no branch or tag {version!r}", file="group_vars/all/main.yml",
                    path=f"git_remote_repository[{index}].version")

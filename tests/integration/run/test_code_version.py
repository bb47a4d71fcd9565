"""A new suite id fixes the commit each repository's version names (git ls-remote on a real repository);
a resumed one reads it back."""

from __future__ import annotations

import pytest

from doe_cli.errors import DoeError, UserError
from doe_cli.run import code_version
from tests.support.rust_crate import Crate


@pytest.fixture
def crate(tmp_path):
    crate = Crate(tmp_path)
    crate.v1 = crate.commit("v1")
    crate.git("tag", "-a", "-m", "release", "release-1")
    crate.other = crate.commit("other", branch="other")
    crate.git("checkout", "-q", "main")
    return crate


def test_a_branch_a_tag_and_head_name_their_commits_now(crate):
    repo = str(crate.repo)
    assert code_version.commit_of(repo, "main", 0) == crate.v1
    assert code_version.commit_of(repo, "HEAD", 0) == crate.v1
    assert code_version.commit_of(repo, "other", 0) == crate.other
    assert code_version.commit_of(repo, "release-1", 0) == crate.v1  # the commit, not the annotated tag
    assert code_version.commit_of(repo, crate.v1[:10], 0) == crate.v1[:10]  # a commit already


def test_a_new_suite_stores_the_commits_and_a_resume_keeps_them_after_the_branch_moved(crate, tmp_path):
    suite_dir = tmp_path / "suite_1"
    repos = [{"repo": str(crate.repo), "version": "main", "dir": "code"}]
    fixed = code_version.fixed_repositories(repos, suite_dir, new=True)
    assert fixed == [{**repos[0], "commit": crate.v1}]
    code_version.store(suite_dir, fixed)
    crate.commit("v2")
    assert code_version.fixed_repositories(repos, suite_dir, new=False) == fixed
    # A suite created before commits were stored keeps its group_vars versions.
    assert code_version.fixed_repositories(repos, tmp_path / "older_1", new=False) == repos


def test_an_unknown_branch_is_bad_input_and_an_unreachable_repository_an_error(crate, tmp_path):
    with pytest.raises(UserError, match=r"git_remote_repository\[1\].version: .* has no branch or tag 'nope'"):
        code_version.commit_of(str(crate.repo), "nope", 1)
    with pytest.raises(DoeError, match="cannot ask .*missing which commit 'main' is: .*"):
        code_version.commit_of(str(tmp_path / "missing"), "main", 0)

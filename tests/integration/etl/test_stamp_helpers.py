"""Stamp checks shared with helper processes give the verdicts that one process gives, also when a helper fails,
and a suite ETL that uses them notices every change."""

from __future__ import annotations

import os
import shutil
import sys

import pytest

from etl import stamps
from etl.api import run_suite_etl
from tests.unit.etl.conftest import RUN_CONFIGS, STEPS, SUITE_ID, design, job_files
from tests.unit.etl.tree import age_tree, write_suite


@pytest.fixture
def helpers_always(monkeypatch):
    """Every check of more than one group is shared with two helpers; returns each helper's answer."""
    monkeypatch.setattr(stamps, "STAMPS_PER_PROCESS", 1)
    monkeypatch.setattr(stamps, "HELPER_START_STAMPS", 0)
    monkeypatch.setattr(stamps, "_usable_cpus", lambda: 3)
    answers = []
    original = stamps._Helper.answer

    def recorded(helper):
        answers.append(original(helper))
        return answers[-1]

    monkeypatch.setattr(stamps._Helper, "answer", recorded)
    return answers


def stamped_groups(root, count=12):
    """`count` folders of three files each, and their stamps (the folder itself first)."""
    groups = []
    for index in range(count):
        folder = root / f"group_{index}"
        (folder / "sub").mkdir(parents=True)
        for name in ("a.csv", "sub/b.log"):
            (folder / name).write_text(f"{index},{name}\n")
        found = [
            (name, os.stat(folder / name if name else folder)) for name in ("", "a.csv", "sub", "sub/b.log")
        ]
        groups.append((str(folder), stamps.pack((name, s.st_size, s.st_mtime_ns) for name, s in found)))
    return groups


def change_some(root):
    """Changes groups 2, 5, 7 and 9 (each in another way); returns their numbers."""
    edited = root / "group_2" / "a.csv"
    before = edited.stat()
    edited.write_text(edited.read_text().replace("2", "7"))  # same size: only the mtime tells
    os.utime(edited, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000))
    (root / "group_5" / "sub" / "b.log").write_text("longer than before\n")
    shutil.rmtree(root / "group_7")
    (root / "group_9" / "sub" / "b.log").unlink()
    return {2, 5, 7, 9}


def test_helpers_give_the_verdicts_of_one_process(tmp_path, helpers_always):
    groups = stamped_groups(tmp_path)
    changed = change_some(tmp_path)
    alone = [stamps.group_unchanged(group) for group in groups]
    assert [index for index, same in enumerate(alone) if not same] == sorted(changed)

    assert stamps.groups_unchanged(groups) == alone
    assert len(helpers_always) == 2 and all(answer is not None for answer in helpers_always)
    assert sum(len(answer) for answer in helpers_always) < len(groups)  # this process checked a share too


@pytest.mark.parametrize("executable", ["/bin/false", "/nonexistent/python"], ids=["fails", "cannot-start"])
def test_the_share_of_a_failed_helper_is_checked_here(tmp_path, helpers_always, monkeypatch, executable):
    groups = stamped_groups(tmp_path)
    change_some(tmp_path)
    alone = [stamps.group_unchanged(group) for group in groups]
    monkeypatch.setattr(sys, "executable", executable)
    assert stamps.groups_unchanged(groups) == alone
    assert helpers_always == [None, None]


def test_a_suite_etl_with_helpers_notices_changes_and_answers_a_rerun(tmp_path, helpers_always):
    pipelines = {"p": {"experiments": "*", "extractors": STEPS, "loaders": {"CsvSummaryLoader": {}}}}
    suite_dir = write_suite(tmp_path / "results", "demo", SUITE_ID, design(pipelines), RUN_CONFIGS, job_files)
    age_tree(suite_dir)
    assert run_suite_etl(suite_dir).by_pipeline()["p"].jobs_read == 6
    helpers_always.clear()
    assert run_suite_etl(suite_dir).by_pipeline()["p"].jobs_read == 0  # answered from the manifest
    assert helpers_always and all(answer is not None for answer in helpers_always)

    edited = suite_dir / "alpha" / "run_1" / "rep_0" / "client" / "host_0" / "results.csv"
    before = edited.stat()
    edited.write_text(edited.read_text().replace("read,20", "read,99"))
    os.utime(edited, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000))
    helpers_always.clear()
    report = run_suite_etl(suite_dir).by_pipeline()["p"]
    assert (report.jobs, report.jobs_read) == (6, 1)
    assert helpers_always and all(answer is not None for answer in helpers_always)
    assert ",99," in (suite_dir / "etl_results" / "p" / "p.csv").read_text()


def test_an_interrupted_check_leaves_no_helper_running(tmp_path, helpers_always, monkeypatch):
    groups = stamped_groups(tmp_path)
    started = []
    original = stamps._Helper.__init__

    def recorded(helper, share):
        original(helper, share)
        started.append(helper)

    def interrupted(group):
        raise KeyboardInterrupt

    monkeypatch.setattr(stamps._Helper, "__init__", recorded)
    monkeypatch.setattr(stamps, "group_unchanged", interrupted)
    with pytest.raises(KeyboardInterrupt):
        stamps.groups_unchanged(groups)
    assert len(started) == 2 and all(helper.process.returncode is not None for helper in started)

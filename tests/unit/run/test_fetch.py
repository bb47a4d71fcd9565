"""Placing fetched files: never overwrite, never follow symlinks, never leave the job's folder."""

from __future__ import annotations

import os

from doe_cli.run.fetch import place_results


def test_files_move_into_place_and_existing_files_are_kept(tmp_path):
    staged = tmp_path / "staged"
    (staged / "sub").mkdir(parents=True)
    (staged / "stdout.log").write_text("new")
    (staged / "sub" / "data.csv").write_text("a,b")
    target = tmp_path / "results" / "host_0"
    target.mkdir(parents=True)
    (target / "stdout.log").write_text("first fetch")
    report = place_results(staged, target)
    assert (target / "stdout.log").read_text() == "first fetch"
    assert (target / "sub" / "data.csv").read_text() == "a,b"
    assert report.placed == ["sub/data.csv"] and report.kept_existing == ["stdout.log"]
    assert not staged.exists()


def test_symlinks_and_special_files_are_refused(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("do not copy")
    outside = tmp_path / "outside"
    outside.mkdir()
    staged = tmp_path / "staged"
    staged.mkdir()
    os.symlink(secret, staged / "link.txt")
    os.symlink(outside, staged / "linkdir")
    os.mkfifo(staged / "fifo")
    (staged / "ok.txt").write_text("ok")
    target = tmp_path / "results" / "host_0"
    report = place_results(staged, target)
    assert sorted(report.refused) == ["fifo", "link.txt", "linkdir"]
    assert sorted(p.name for p in target.iterdir()) == ["ok.txt"]
    assert secret.read_text() == "do not copy" and list(outside.iterdir()) == []


def test_a_symlinked_target_subfolder_is_not_followed(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    target = tmp_path / "results" / "host_0"
    target.mkdir(parents=True)
    os.symlink(outside, target / "sub")  # planted by something else; the fetch must not write through it
    staged = tmp_path / "staged"
    (staged / "sub").mkdir(parents=True)
    (staged / "sub" / "x.txt").write_text("x")
    report = place_results(staged, target)
    assert report.refused == ["sub"] and list(outside.iterdir()) == []


def test_a_first_fetch_of_plain_files_moves_the_whole_folder(tmp_path):
    staged = tmp_path / "staged"
    (staged / "sub").mkdir(parents=True)
    (staged / "stdout.log").write_text("out")
    (staged / "sub" / "x.csv").write_text("1")
    target = tmp_path / "results" / "run_0" / "rep_0" / "small" / "host_0"
    report = place_results(staged, target)
    assert sorted(report.placed) == ["stdout.log", "sub/x.csv"] and not report.refused
    assert (target / "sub" / "x.csv").read_text() == "1" and not staged.exists()

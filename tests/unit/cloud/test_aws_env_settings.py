"""doe-suite's $DOES_SSH_KEY_NAME and $DOES_AWS_USER fill the AWS settings group_vars/all leaves empty."""

from __future__ import annotations

import pytest

from doe_cli.cloud.aws_playbooks import base_vars
from doe_cli.config import Project


@pytest.fixture
def project(tmp_path):
    (tmp_path / "group_vars" / "all").mkdir(parents=True)
    return Project(config_dir=tmp_path, results_dir=tmp_path / "results")


def write_group_all(project: Project, text: str) -> None:
    (project.group_vars_dir / "all" / "main.yml").write_text(text)


def test_environment_fills_empty_settings(project, monkeypatch):
    write_group_all(project, 'aws_key_name: ""\naws_ssh_user: ""\n')
    monkeypatch.setenv("DOES_SSH_KEY_NAME", "my-key")
    monkeypatch.setenv("DOES_AWS_USER", "admin")
    assert base_vars(project) == {"doe_config_dir": str(project.config_dir), "aws_key_name": "my-key",
                                  "aws_ssh_user": "admin"}


def test_group_vars_values_win_over_the_environment(project, monkeypatch):
    write_group_all(project, "aws_key_name: lab-key\naws_ssh_user: ec2-user\n")
    monkeypatch.setenv("DOES_SSH_KEY_NAME", "my-key")
    monkeypatch.setenv("DOES_AWS_USER", "admin")
    assert base_vars(project) == {"doe_config_dir": str(project.config_dir)}


def test_nothing_from_an_unset_environment(project, monkeypatch):
    monkeypatch.delenv("DOES_SSH_KEY_NAME", raising=False)
    monkeypatch.delenv("DOES_AWS_USER", raising=False)
    assert base_vars(project) == {"doe_config_dir": str(project.config_dir)}

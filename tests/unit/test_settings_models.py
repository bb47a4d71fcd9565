"""The settings layer: group_vars read once per command into typed models; templates rendered; every
bad value named by its file, its key and what was expected; the AWS roles get host types' settings as data."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from doe_cli.clouds.aws.host_plan import HostSlot, plan_inputs
from doe_cli.config import Project, load_group_vars
from doe_cli.errors import UserError
from doe_cli.main import forget_settings
from doe_cli.settings import parse_aws_settings, settings_of
from tests.conftest import REPO_ROOT


def write(project: Project, group: str, values: dict | str, name: str = "main.yml") -> None:
    path = project.group_vars_dir / group / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(values if isinstance(values, str) else yaml.safe_dump(values))


@pytest.fixture
def project(tmp_path: Path) -> Project:
    found = Project(config_dir=tmp_path, results_dir=tmp_path / "results")
    write(found, "all", {"prj_id": "p", "aws_region": "eu-north-1", "job_timeout": 600})
    return found


def message(call) -> str:
    with pytest.raises(UserError) as caught:
        call()
    assert caught.value.exit_code == 2 and "\n" not in str(caught.value)
    return str(caught.value)


# --- the loader ---------------------------------------------------------------------------------------------

def test_group_vars_are_read_once_per_command(project):
    assert settings_of(project).all.prj_id == "p"
    write(project, "all", {"prj_id": "edited"})
    assert settings_of(project).all.prj_id == "p" and load_group_vars(project, "all")["prj_id"] == "p"
    forget_settings()  # the next command
    assert settings_of(project).all.prj_id == "edited"


def test_a_host_types_files_are_read_main_first_and_errors_name_the_file_that_set_the_key(project):
    write(project, "slow", {"job_timeout": 5})
    write(project, "slow", {"slurm_cpus_per_task": "four"}, name="slurm.yml")
    assert settings_of(project).host_type("slow").job_timeout == 5
    assert message(lambda: settings_of(project).slurm_host_type("slow")) == (
        "group_vars/slow/slurm.yml: slurm_cpus_per_task: expected a whole number >= 1, got 'four'")


def test_unreadable_group_vars_name_their_file(project):
    write(project, "broken", "a: [1\n")
    assert message(lambda: load_group_vars(project, "broken")).startswith("group_vars/broken/main.yml: not valid YAML")
    forget_settings()
    write(project, "broken", "- a list\n")
    assert message(lambda: load_group_vars(project, "broken")) == "group_vars/broken/main.yml: expected a mapping of settings"


def test_templates_in_settings_doe_reads_are_rendered_as_doe_suite_renders_them(project, monkeypatch):
    monkeypatch.setenv("DOES_PROJECT_ID_SUFFIX", "x7")
    write(project, "all", {"prj_id": "example_{{ does_project_id_suffix }}", "budget": 12,
                           "aws_budget_usd": "{{ budget * 2 }}", "exp_code_dir": "{{ remote_dir }}/code"})
    write(project, "small", {"aws_ami_id": "{{ ami_of_region }}", "ami_of_region": "ami-0123456789abcdef0"})
    settings = settings_of(project)
    assert settings.all.prj_id == "example_x7"
    assert settings.aws.aws_budget_usd == 24  # a number: rendered natively, as Ansible does
    assert settings.aws_host_type("small").aws_ami_id == "ami-0123456789abcdef0"
    # The roles' keys stay as written: they may use variables only a host has.
    assert settings.all.model_extra["exp_code_dir"] == "{{ remote_dir }}/code"


def test_a_template_that_gives_no_folder_name_is_refused(project):
    write(project, "all", {"prj_id": "{{ 'a/b' }}"})
    assert message(lambda: settings_of(project).all).startswith(
        "group_vars/all/main.yml: prj_id: expected a folder name (the project's folder on the hosts), got 'a/b'")


# --- a host type's job_timeout ------------------------------------------------------------------------------

@pytest.mark.parametrize(("written", "seconds"), [({"job_timeout": "90"}, 90), ({"job_timeout": 0}, None),
                                                  ({"job_timeout": None}, None), ({}, 600)])
def test_job_timeout_of_the_host_type_over_all(project, written, seconds):
    write(project, "small", written)
    assert settings_of(project).host_type("small").job_timeout == seconds


def test_a_bad_job_timeout_names_the_file_it_came_from(project):
    write(project, "all", {"job_timeout": "soon"})
    write(project, "small", {"aws_instance_type": "t3.small"})
    assert message(lambda: settings_of(project).host_type("small")) == (
        "group_vars/all/main.yml: job_timeout: expected a number of seconds, got 'soon'")


# --- Slurm --------------------------------------------------------------------------------------------------

def test_slurm_settings_layer_the_host_type_over_all(project):
    write(project, "all", {"slurm_max_pending_minutes": 5, "slurm_partition": "normal"})
    write(project, "gpu", {"slurm_partition": "gpu", "euler_gpu_number": 2, "euler_env": "cuda/12 gcc"})
    settings = settings_of(project).slurm_host_type("gpu")
    assert settings.scheduler_config() == {"sbatch_args": ["--partition=gpu", "--gpus=2"], "modules": ["cuda/12", "gcc"],
                                           "max_pending_minutes": 5}


@pytest.mark.parametrize("value", [-1, "never", True])
def test_a_bad_pending_limit_names_its_key(project, value):
    write(project, "gpu", {"slurm_max_pending_minutes": value})
    assert message(lambda: settings_of(project).slurm_host_type("gpu")).startswith(
        "group_vars/gpu/main.yml: slurm_max_pending_minutes: expected minutes >= 0 (0: wait forever)")


# --- AWS ----------------------------------------------------------------------------------------------------

def test_aws_settings_of_group_vars_all_with_their_defaults():
    settings = parse_aws_settings({"aws_price_usd_per_hour": {"t3.small": 0.0208, "x9.new": None},
                                   "aws_inventory_host_overrides": {"small": {0: {"ansible_port": 2201}}}})
    assert (settings.aws_budget_usd, settings.aws_max_lifetime_hours, settings.aws_setup_allowance_minutes) == (0, 24, 10)
    assert settings.aws_price_usd_per_hour == {"t3.small": 0.0208, "x9.new": None}  # null: no price known
    assert settings.aws_inventory_host_overrides == {"small": {0: {"ansible_port": 2201}}}
    assert parse_aws_settings({"aws_price_usd_per_hour": None}).aws_price_usd_per_hour == {}


@pytest.mark.parametrize(("values", "expected"), [
    ({"aws_budget_usd": "lots"}, "group_vars/all/main.yml: aws_budget_usd: expected a number, 0 or more, got 'lots'"),
    ({"aws_max_lifetime_hours": -1}, "group_vars/all/main.yml: aws_max_lifetime_hours: expected a number, 0 or more"),
    ({"aws_setup_allowance_minutes": True},
     "group_vars/all/main.yml: aws_setup_allowance_minutes: expected the minutes provisioning and host setup take"),
    ({"aws_price_usd_per_hour": {"t3.small": "cheap"}},
     "group_vars/all/main.yml: aws_price_usd_per_hour: expected USD per hour (a number, 0 or more) per instance type"),
    ({"aws_price_usd_per_hour": [1]}, "group_vars/all/main.yml: aws_price_usd_per_hour: expected USD per hour"),
])
def test_bad_aws_settings_name_the_file_and_the_key(values, expected):
    assert message(lambda: parse_aws_settings(values)).startswith(expected)


def test_a_host_types_aws_settings_get_their_defaults_and_leave_a_missing_ami_to_the_preflight(project):
    write(project, "small", {"aws_instance_type": "t3.small", "aws_root_volume_size_gb": "20",
                             "aws_iam_instance_profile": None, "aws_market": "spot"})
    assert settings_of(project).aws_host_type("small").role_vars() == {
        "aws_instance_type": "t3.small", "aws_root_device_name": "/dev/sda1", "aws_root_volume_size_gb": 20,
        "aws_root_volume_type": "gp3", "aws_root_volume_snapshot": "", "aws_iam_instance_profile": "",
        "aws_market": "spot"}


def test_aws_host_type_settings_do_not_come_from_all(project):
    # As the preflight role always read them: a host type's own file (all's AWS keys are the project's).
    write(project, "all", {"aws_instance_type": "t3.small"})
    write(project, "small", {})
    assert settings_of(project).aws_host_type("small").aws_instance_type is None


@pytest.mark.parametrize(("values", "expected"), [
    ({"aws_market": "Spot"}, "group_vars/small/main.yml: aws_market: expected on-demand or spot, got 'Spot'"),
    ({"aws_root_volume_size_gb": 0}, "group_vars/small/main.yml: aws_root_volume_size_gb: expected a whole number of GB"),
    ({"aws_ami_id": ["ami-1"]}, "group_vars/small/main.yml: aws_ami_id: expected a valid string"),
])
def test_bad_host_type_aws_settings_name_the_file_and_the_key(project, values, expected):
    write(project, "small", values)
    assert message(lambda: settings_of(project).aws_host_type("small")).startswith(expected)


def test_the_aws_playbooks_get_each_planned_host_types_settings_once(project):
    write(project, "small", {"aws_instance_type": "t3.small", "aws_ami_id": "ami-0123456789abcdef0"})
    write(project, "large", {"aws_instance_type": "r6i.8xlarge"})
    plan = [HostSlot("a", "small", 0), HostSlot("a", "small", 1), HostSlot("b", "large", 0)]
    inputs = plan_inputs(project, plan)
    assert inputs["doe_host_plan"][2] == {"exp": "b", "host_type": "large", "idx": 0}
    assert list(inputs["doe_aws_host_types"]) == ["small", "large"]
    assert inputs["doe_aws_host_types"]["small"]["aws_ami_id"] == "ami-0123456789abcdef0"
    assert "aws_ami_id" not in inputs["doe_aws_host_types"]["large"]  # the preflight rejects it, naming the file


def test_the_preflight_role_reads_no_group_vars_file_and_documents_its_input():
    tasks = (REPO_ROOT / "roles/aws_preflight/tasks/main.yml").read_text()
    assert "group_vars/{{ item }}" not in tasks and "from_yaml" not in tasks
    specs = yaml.safe_load((REPO_ROOT / "roles/aws_preflight/meta/argument_specs.yml").read_text())
    option = specs["argument_specs"]["main"]["options"]["aws_preflight_host_types"]
    assert option["type"] == "dict" and option["required"] is True
    defaults = yaml.safe_load((REPO_ROOT / "roles/aws_preflight/defaults/main.yml").read_text())
    assert defaults["aws_preflight_host_types"] == "{{ doe_aws_host_types }}"
    lookup = (REPO_ROOT / "roles/playbook_inputs/tasks/main.yml").read_text()
    assert "doe_aws_host_types: \"{{ playbook_inputs_resolved.aws_host_types }}\"" in lookup

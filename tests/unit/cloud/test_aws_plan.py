"""Cost and wall time estimates of `doe plan --cloud aws` for known plans (files only, no AWS)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from doe_cli.cloud.aws_plan import build_plan, check_budget, estimate_wall_seconds
from doe_cli.cloud.host_plan import HostSlot
from doe_cli.config import Project
from doe_cli.errors import UserError

PLAN = [HostSlot("exp1", "small", 0), HostSlot("exp1", "small", 1), HostSlot("exp2", "medium", 0)]


def write(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))


@pytest.fixture
def project(tmp_path: Path) -> Project:
    write(tmp_path / "group_vars/all/main.yml", {
        "aws_max_lifetime_hours": 6, "aws_budget_usd": 40,
        "aws_price_usd_per_hour": {"r6i.8xlarge": 2.016, "r6i.16xlarge": 4.032}})
    write(tmp_path / "group_vars/small/main.yml", {"aws_instance_type": "r6i.8xlarge"})
    write(tmp_path / "group_vars/medium/main.yml", {"aws_instance_type": "r6i.16xlarge"})
    return Project(config_dir=tmp_path, results_dir=tmp_path / "results")


def runtime_info(project: Project, suite_dir: str, exp: str, run: int, host_type: str, host: int,
                 wall: float, status: str = "finished") -> None:
    write(project.results_dir / suite_dir / exp / f"run_{run}" / "rep_0" / host_type / f"host_{host}" /
          ".doe_runtime_info.yaml", {"wall_seconds": wall, "status": status, "exit_code": 0})


def test_without_an_earlier_run_the_cost_is_the_upper_bound_at_the_max_lifetime(project):
    plan = build_plan(project, "s", PLAN, {"exp1": 3, "exp2": 1})
    assert plan.hosts == {"small": 2, "medium": 1}
    assert plan.hourly_usd == pytest.approx(2 * 2.016 + 4.032)
    assert plan.wall_seconds is None and plan.cost_is_upper_bound
    assert plan.cost_usd == pytest.approx(8.064 * 6)
    assert plan.over_budget
    text = "\n".join(plan.lines())
    assert "small: 2 x r6i.8xlarge" in text and "unknown" in text and "$48.38" in text


def test_earlier_runs_give_the_wall_time_of_the_longest_experiment(project):
    # exp1: jobs took 100 s and 300 s (slowest host counts); exp2: 50 s. Older suite ids are ignored.
    runtime_info(project, "s_200", "exp1", 0, "small", 0, 100)
    runtime_info(project, "s_200", "exp1", 0, "small", 1, 80)
    runtime_info(project, "s_200", "exp1", 1, "small", 0, 300)
    runtime_info(project, "s_200", "exp2", 0, "medium", 0, 50)
    runtime_info(project, "s_100", "exp1", 0, "small", 0, 9999)
    runtime_info(project, "other_300", "exp1", 0, "small", 0, 9999)
    runtime_info(project, "s_200", "exp2", 1, "medium", 0, 9999, status="failed")
    assert estimate_wall_seconds(project.results_dir, "s", {"exp1": 3, "exp2": 1}) == pytest.approx(600)
    plan = build_plan(project, "s", PLAN, {"exp1": 3, "exp2": 1})
    assert not plan.cost_is_upper_bound
    assert plan.cost_usd == pytest.approx(8.064 * 600 / 3600, rel=1e-3)
    assert not plan.over_budget
    check_budget(plan, accept=False)


def test_an_experiment_without_earlier_data_makes_the_wall_time_unknown(project):
    runtime_info(project, "s_200", "exp1", 0, "small", 0, 100)
    assert estimate_wall_seconds(project.results_dir, "s", {"exp1": 1, "exp2": 1}) is None


def test_over_budget_is_refused_unless_accepted_with_one_line_naming_the_key(project):
    plan = build_plan(project, "s", PLAN)
    with pytest.raises(UserError) as refused:
        check_budget(plan, accept=False)
    message = str(refused.value)
    assert refused.value.exit_code == 2 and "\n" not in message
    assert "group_vars/all/main.yml: aws_budget_usd: estimated cost $48.38 exceeds the budget $40.00" in message
    check_budget(plan, accept=True)


def test_a_missing_price_names_the_table_and_the_instance_type(project):
    write(project.config_dir / "group_vars/medium/main.yml", {"aws_instance_type": "x9.huge"})
    with pytest.raises(UserError, match=r"aws_price_usd_per_hour: no price for instance type x9.huge"):
        build_plan(project, "s", PLAN)


def test_a_host_type_without_an_instance_type_names_its_file(project):
    write(project.config_dir / "group_vars/medium/main.yml", {})
    with pytest.raises(UserError, match=r"group_vars/medium/main.yml: aws_instance_type: expected"):
        build_plan(project, "s", PLAN)

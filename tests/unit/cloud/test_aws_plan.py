"""Cost and wall time estimates of `doe plan --cloud aws` for known plans (files only, no AWS)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from doe_cli.clouds.aws.host_plan import HostSlot
from doe_cli.clouds.aws.plan import build_plan, check_budget, estimate_job_times
from doe_cli.config import Project
from doe_cli.errors import UserError

PLAN = [HostSlot("exp1", "small", 0), HostSlot("exp1", "small", 1), HostSlot("exp2", "medium", 0)]


def write(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))


def set_all_vars(project: Project, **settings) -> None:
    all_vars = project.group_vars_dir / "all" / "main.yml"
    write(all_vars, {**yaml.safe_load(all_vars.read_text()), **settings})


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
    job_times = estimate_job_times(project.results_dir, "s", {"exp1": 3, "exp2": 1})
    assert job_times.seconds == pytest.approx(600) and job_times.sources == ["s_200"]
    plan = build_plan(project, "s", PLAN, {"exp1": 3, "exp2": 1})
    assert not plan.cost_is_upper_bound
    assert plan.cost_usd == pytest.approx(8.064 * (600 + 600) / 3600, rel=1e-3)  # + 10 min provisioning and setup
    assert not plan.over_budget
    check_budget(plan, accept=False)


def test_adaptive_repetitions_are_costed_at_their_maximum_and_say_so(project):
    runtime_info(project, "s_200", "exp1", 0, "small", 0, 100)
    runtime_info(project, "s_200", "exp2", 0, "medium", 0, 50)
    plain = build_plan(project, "s", PLAN, {"exp1": 3, "exp2": 1})
    adaptive = build_plan(project, "s", PLAN, {"exp1": 30, "exp2": 1}, adaptive=["exp1"])
    assert adaptive.cost_usd > plain.cost_usd
    text = "\n".join(adaptive.lines())
    assert "jobs: at most 31 (exp1: at most 30, exp2: 1)" in text, text
    assert "adaptive repetitions reach repetitions.max in exp1" in text


def test_an_experiment_without_earlier_data_makes_the_wall_time_unknown(project):
    runtime_info(project, "s_200", "exp1", 0, "small", 0, 100)
    assert estimate_job_times(project.results_dir, "s", {"exp1": 1, "exp2": 1}) is None


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


def test_a_few_seconds_of_jobs_still_cost_the_provisioning_and_setup_time(project):
    runtime_info(project, "s_200", "exp1", 0, "small", 0, 3)
    plan = build_plan(project, "s", PLAN, {"exp1": 1})
    assert plan.wall_seconds == pytest.approx(603)
    assert plan.cost_usd == pytest.approx(8.064 * 603 / 3600)
    text = "\n".join(plan.lines())
    assert "estimated wall time: 0h 10m 03s (jobs 0h 00m 03s + provisioning and setup 0h 10m 00s)" in text
    assert "estimated cost: $1.35 (at the estimated wall time: 0.168 h x $8.0640/h)" in text


def test_without_an_allowance_every_instance_is_billed_at_least_a_minute(project):
    set_all_vars(project, aws_setup_allowance_minutes=0)
    runtime_info(project, "s_200", "exp1", 0, "small", 0, 3)
    plan = build_plan(project, "s", PLAN, {"exp1": 1})
    assert plan.wall_seconds == pytest.approx(3)
    assert plan.cost_usd == pytest.approx(8.064 * 60 / 3600)


def test_the_estimate_is_capped_at_the_max_lifetime(project):
    runtime_info(project, "s_200", "exp1", 0, "small", 0, 7 * 3600)
    plan = build_plan(project, "s", PLAN, {"exp1": 1})
    assert plan.billed_hours == 6 and plan.cost_usd == pytest.approx(8.064 * 6)


def test_one_line_says_what_the_estimate_assumes(project):
    for suite_id in (100, 200, 300, 400, 500):  # each newest run holds the records of one experiment only
        runtime_info(project, f"s_{suite_id}", f"exp{suite_id}", 0, "small", 0, 3)
    set_all_vars(project, aws_setup_allowance_minutes=15)
    plan = build_plan(project, "s", PLAN, {f"exp{suite_id}": 1 for suite_id in (100, 200, 300, 400, 500)})
    [assumes] = [line for line in plan.lines() if line.startswith("assumes: ")]
    assert assumes == ("assumes: job times from the records of s_500, s_400, s_300 and 2 more; 0h 15m 00s for "
                       "provisioning and setup (aws_setup_allowance_minutes); at least 60 s billed per instance; "
                       f"prices from aws_price_usd_per_hour in {project.group_vars_dir / 'all' / 'main.yml'}")
    unknown = build_plan(project, "s", PLAN, {"exp1": 1})
    [assumes] = [line for line in unknown.lines() if line.startswith("assumes: ")]
    assert assumes.startswith("assumes: no job times (no earlier run of this suite covers every experiment): "
                              "instances run until aws_max_lifetime_hours (6 h); 0h 15m 00s for provisioning and setup")


def test_a_cost_below_a_cent_is_not_shown_as_free(project):
    set_all_vars(project, aws_setup_allowance_minutes=0,
                 aws_price_usd_per_hour={"r6i.8xlarge": 0.0042, "r6i.16xlarge": 0.0042})
    runtime_info(project, "s_200", "exp1", 0, "small", 0, 3)
    plan = build_plan(project, "s", PLAN, {"exp1": 1})
    assert "estimated cost: under $0.01 (at the estimated wall time" in "\n".join(plan.lines())


@pytest.mark.parametrize("allowance", [-5, "ten", True])
def test_a_bad_allowance_names_the_key(project, allowance):
    set_all_vars(project, aws_setup_allowance_minutes=allowance)
    with pytest.raises(UserError, match=r"group_vars/all/main.yml: aws_setup_allowance_minutes: expected the minutes"):
        build_plan(project, "s", PLAN)

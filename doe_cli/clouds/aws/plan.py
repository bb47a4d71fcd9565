"""`doe plan --cloud aws`: what a suite would launch, how long it may take, what it may cost.

Costs come from the price table in group_vars/all/main.yml (aws_price_usd_per_hour). The job time is
estimated from doe's job records (.doe_runtime_info.yaml) of earlier runs of the same suite: per experiment, the mean job
wall time times its number of jobs; experiments run in parallel, so the suite takes the longest one.
Every instance lives that long plus the provisioning and setup allowance (aws_setup_allowance_minutes),
and EC2 bills at least a minute of it. Without an earlier run the wall time is unknown and the cost is
the upper bound at the max lifetime, after which every instance terminates itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean

import yaml

from doe_cli.clouds.aws.host_plan import HostSlot, host_plan_for_suite, hosts_per_type, plan_inputs
from doe_cli.clouds.aws.playbooks import raise_for_failure, run_playbook
from doe_cli.clouds.base import format_usd
from doe_cli.config import Project
from doe_cli.design import load_suite
from doe_cli.errors import UserError
from doe_cli.settings import settings_of
from etl.fileio import DOE_RECORD
from etl.layout import suite_runs

BILLING_MINIMUM_SECONDS = 60  # EC2 bills Linux instances per second, but at least a minute per launch
MAX_SOURCES_NAMED = 3


@dataclass(frozen=True)
class JobTimes:
    seconds: float                        # the longest experiment's jobs, one after another
    sources: list[str]                    # results folders whose records gave them, newest first


@dataclass(frozen=True)
class CloudPlan:
    suite: str
    hosts: dict[str, int]                 # instances per host type
    instance_types: dict[str, str]        # host type -> EC2 instance type
    jobs: dict[str, int] | None           # jobs per experiment (at most); None when the design gave none
    job_times: JobTimes | None            # None: no earlier run to estimate from
    setup_allowance_seconds: float        # provisioning and host setup before the first job
    wall_seconds: float | None            # job time plus the allowance; None without job times
    hourly_usd: float                     # all instances together
    billed_hours: float
    cost_usd: float
    cost_is_upper_bound: bool
    lifetime_hours: float
    budget_usd: float
    all_vars_file: Path
    adaptive: list[str] = field(default_factory=list)  # experiments whose job count is an upper bound

    @property
    def over_budget(self) -> bool:
        return self.cost_usd > self.budget_usd

    def lines(self) -> list[str]:
        lines = [f"suite: {self.suite}", "hosts:"]
        lines += [f"  {t}: {n} x {self.instance_types[t]}" for t, n in self.hosts.items()]
        if self.jobs is not None:
            at_most = "at most " if self.adaptive else ""
            lines.append(f"jobs: {at_most}{sum(self.jobs.values())} ("
                         + ", ".join(f"{exp}: {'at most ' if exp in self.adaptive else ''}{n}"
                                     for exp, n in self.jobs.items()) + ")")
        if self.job_times is None or self.wall_seconds is None:
            wall = "unknown (no earlier run of this suite)"
        else:
            wall = (f"{_duration(self.wall_seconds)} (jobs {_duration(self.job_times.seconds)} + provisioning and "
                    f"setup {_duration(self.setup_allowance_seconds)})")
        lines.append(f"estimated wall time: {wall}")
        basis = "upper bound at the max lifetime" if self.cost_is_upper_bound else "at the estimated wall time"
        lines.append(f"estimated cost: {format_usd(self.cost_usd)} ({basis}: {self.billed_hours:g} h x "
                     f"${self.hourly_usd:.4f}/h)")
        lines.append(f"assumes: {'; '.join(self.assumptions())}")
        lines.append(f"budget: ${self.budget_usd:.2f}")
        return lines

    def assumptions(self) -> list[str]:
        """Where each input of the estimate comes from, so a surprising figure can be traced."""
        if self.job_times is None:
            job_source = ("no job times (no earlier run of this suite covers every experiment): instances run "
                          f"until aws_max_lifetime_hours ({self.lifetime_hours:g} h)")
        else:
            named = self.job_times.sources[:MAX_SOURCES_NAMED]
            more = len(self.job_times.sources) - len(named)
            job_source = f"job times from the records of {', '.join(named)}" + (f" and {more} more" if more else "")
        reps = ([f"adaptive repetitions reach repetitions.max in {', '.join(self.adaptive)}"]
                if self.adaptive and self.job_times is not None else [])
        return [job_source, *reps,
                f"{_duration(self.setup_allowance_seconds)} for provisioning and setup (aws_setup_allowance_minutes)",
                f"at least {BILLING_MINIMUM_SECONDS} s billed per instance",
                f"prices from aws_price_usd_per_hour in {self.all_vars_file}"]


def _duration(seconds: float) -> str:
    minutes, secs = divmod(math.ceil(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s"


def estimate_job_times(results_dir: Path, suite: str, jobs: dict[str, int] | None) -> JobTimes | None:
    """Longest experiment: mean finished job wall time (max over its hosts) x its jobs; None if no data."""
    per_exp_job_walls: dict[str, list[float]] = {}
    per_exp_source: dict[str, str] = {}
    suite_dirs = [run.folder for run in reversed(suite_runs(results_dir, suite))]
    for suite_dir in suite_dirs:  # newest first: the newest run with data for an experiment wins
        found: dict[str, dict[Path, float]] = {}
        for info_file in suite_dir.glob(f"*/run_*/rep_*/*/host_*/{DOE_RECORD}"):
            info = _runtime_info(info_file)
            if info is None:
                continue
            exp = info_file.relative_to(suite_dir).parts[0]
            rep_dir = info_file.parents[2]
            walls = found.setdefault(exp, {})
            walls[rep_dir] = max(walls.get(rep_dir, 0.0), info)
        for exp, walls in found.items():
            if exp not in per_exp_job_walls:
                per_exp_job_walls[exp] = list(walls.values())
                per_exp_source[exp] = suite_dir.name
    if jobs is None:  # no design at hand: assume the earlier runs' jobs again
        jobs = {exp: len(walls) for exp, walls in per_exp_job_walls.items()}
    if not jobs or any(exp not in per_exp_job_walls for exp in jobs):
        return None  # an experiment without earlier data could take any time
    used = {per_exp_source[exp] for exp in jobs}
    return JobTimes(seconds=max(mean(per_exp_job_walls[exp]) * n_jobs for exp, n_jobs in jobs.items()),
                    sources=[d.name for d in suite_dirs if d.name in used])


def _runtime_info(path: Path) -> float | None:
    try:
        info = yaml.safe_load(path.read_text())
        if info.get("status") != "finished":
            return None
        return float(info["wall_seconds"])
    except (OSError, yaml.YAMLError, AttributeError, KeyError, TypeError, ValueError):
        return None


def build_plan(project: Project, suite: str, host_plan: list[HostSlot],
               jobs: dict[str, int] | None = None, adaptive: list[str] | None = None) -> CloudPlan:
    """Hosts, wall time and cost of a suite from its host plan; reads group_vars only."""
    all_vars_file = project.group_vars_dir / "all" / "main.yml"
    settings = settings_of(project)
    aws = settings.aws
    hosts = hosts_per_type(host_plan)
    instance_types = {}
    for host_type in hosts:
        instance_type = settings.aws_host_type(host_type).aws_instance_type
        if not instance_type:
            raise UserError("expected an EC2 instance type such as r6i.8xlarge",
                            file=str(project.group_vars_dir / host_type / "main.yml"), path="aws_instance_type")
        instance_types[host_type] = instance_type
    hourly = 0.0
    for host_type, count in hosts.items():
        price = aws.aws_price_usd_per_hour.get(instance_types[host_type])
        if price is None:
            raise UserError(f"no price for instance type {instance_types[host_type]} (host type {host_type}); "
                            "expected USD per hour", file=str(all_vars_file), path="aws_price_usd_per_hour")
        hourly += price * count
    lifetime_hours = aws.aws_max_lifetime_hours
    allowance = aws.aws_setup_allowance_minutes * 60
    job_times = estimate_job_times(project.results_dir, suite, jobs)
    wall = None if job_times is None else job_times.seconds + allowance
    # All instances live equally long, so the per-instance minimum applies to the shared time.
    billed_hours = lifetime_hours if wall is None else min(lifetime_hours, max(wall, BILLING_MINIMUM_SECONDS) / 3600)
    return CloudPlan(suite=suite, hosts=hosts, instance_types=instance_types, jobs=jobs, job_times=job_times,
                     setup_allowance_seconds=allowance, wall_seconds=wall, hourly_usd=hourly,
                     billed_hours=round(billed_hours, 3), cost_usd=hourly * billed_hours,
                     cost_is_upper_bound=wall is None, lifetime_hours=lifetime_hours,
                     budget_usd=aws.aws_budget_usd, all_vars_file=all_vars_file, adaptive=adaptive or [])


def check_budget(plan: CloudPlan, *, accept: bool) -> None:
    if plan.over_budget and not accept:
        raise UserError(f"estimated cost ${plan.cost_usd:.2f} exceeds the budget ${plan.budget_usd:.2f}; "
                        "raise it or pass --yes", file=str(plan.all_vars_file), path="aws_budget_usd")


def preflight(project: Project, host_plan: list[HostSlot]) -> None:
    """Credentials, region, AMIs, instance types, key pair, SSH source (playbooks/aws-preflight.yml)."""
    result = run_playbook(project, "aws-preflight.yml", project.results_dir / ".ansible",
                          plan_inputs(project, host_plan))
    raise_for_failure(result, "AWS preflight")


def load_aws_suite(project: Project, suite_name: str):
    """The suite's design expanded as for a run on AWS (the design may branch on `cloud`)."""
    return load_suite(project, suite_name, variables={"suite": suite_name, "cloud": "aws"}, strict=False)


def plan_suite(project: Project, suite_name: str) -> tuple[CloudPlan, list[HostSlot]]:
    """Expand the design and build the plan (files only; see preflight for the AWS checks)."""
    suite = load_aws_suite(project, suite_name)
    host_plan = host_plan_for_suite(suite)
    jobs = {name: exp.max_jobs() for name, exp in suite.experiments.items()}
    adaptive = [name for name, exp in suite.experiments.items() if exp.repetitions is not None]
    return build_plan(project, suite_name, host_plan, jobs, adaptive), host_plan

"""What the AWS playbooks need, from the simple inputs ops staff give them (`-e suite=S -e id=ID`).

doe passes the host plan, its host types' settings and the suite id itself; a plain `ansible-playbook` run gets them here,
through plugins/lookup/doe_suite.py, from the same design expansion and results folders doe uses.
"""

from __future__ import annotations

from typing import Any

from doe_cli.clouds.aws.host_plan import host_plan_for_suite, plan_inputs
from doe_cli.clouds.aws.plan import load_aws_suite
from doe_cli.clouds.aws.provision import inventory_file
from doe_cli.config import Project, discover
from doe_cli.errors import UserError
from doe_cli.run.suite_id import resolve_suite_id
from etl.layout import suite_folder


def suite_inputs(suite: str, id_option: str = "", *, with_plan: bool = True,
                 project: Project | None = None) -> dict[str, Any]:
    """{config_dir, suite, suite_id, suite_dir, inventory_file[, host_plan, aws_host_types]}.

    id_option: "" (no id: a preflight), "new", "last" or digits. Digits are taken as given, without a
    results folder: resources can outlive theirs, and a teardown must still find them (a teardown,
    without the plan, needs no suite when it has the id).
    """
    value = str(id_option).strip()
    if not suite and (with_plan or not value.isdigit()):
        raise UserError("name the suite: -e suite=<a design in designs/>", path="suite")
    project = project or discover()
    suite_id = value if value.isdigit() or not value else str(resolve_suite_id(project.results_dir, suite, value)[0])
    suite_dir = suite_folder(project.results_dir, suite, suite_id) if suite and suite_id else None
    inputs: dict[str, Any] = {
        "config_dir": str(project.config_dir),
        "suite": suite,
        "suite_id": suite_id,
        "suite_dir": str(suite_dir) if suite_dir else "",
        "inventory_file": str(inventory_file(suite_dir)) if suite_dir else "",
    }
    if with_plan:
        planned = plan_inputs(project, host_plan_for_suite(load_aws_suite(project, suite)))
        inputs.update(host_plan=planned["doe_host_plan"], aws_host_types=planned["doe_aws_host_types"])
    return inputs

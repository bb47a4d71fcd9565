"""Host variables as designs see them (`at_runtime`, `exp_host_lst[*].hostvars`).

doe-suite projects build host variables from others with Jinja (`prj_id: example_{{ does_project_id_suffix }}`,
`exp_code_dir: "{{ remote.dir }}/code"`). Ansible renders them in each host's context, as doe-suite did:
the setup reports them (setup-suite's render_host_vars) and doe keeps that report for resumes. Before
the setup, a value with a template is a placeholder: a new suite's commands are checked with it and
built again from the report.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jinja2

from doe_cli.config import Project, holds_template
from doe_cli.design.filters import RuntimePlaceholder
from doe_cli.fileio import write_atomic


def context_vars(project: Project, suite: str, cloud: str, first_repository_dir: str) -> dict[str, Any]:
    """Variables doe-suite's group_vars refer to, for the inventory's `all` group (lowest precedence:
    the project's group_vars and the inventory's host vars win); each cloud adds remote_dir, doe's
    folder on the host. exp_code_dir is where setup-suite checks the first repository out."""
    return {
        "suite": suite,
        "cloud": cloud,
        "does_project_id_suffix": os.environ.get("DOES_PROJECT_ID_SUFFIX", ""),
        "does_project_dir": os.environ.get("DOES_PROJECT_DIR") or str(project.config_dir.parent),
        "does_config_dir": str(project.config_dir),
        "exp_code_dir": f"{{{{ job_queue_dir }}}}/{first_repository_dir}",
    }


def before_setup(raw: dict[str, Any]) -> dict[str, Any]:
    """A host's variables before Ansible rendered them: values with templates are placeholders."""
    return {name: RuntimePlaceholder(name=name) if holds_template(value) else value for name, value in raw.items()}


def from_report(report: dict[str, Any], host: str) -> dict[str, Any]:
    """A host's variables from its render report; a value that could not be rendered fails the
    template that reads it, naming the variable (unread ones do no harm, as in doe-suite)."""
    hostvars = dict(report.get("host_vars") or {})
    for name, reason in (report.get("unrendered") or {}).items():
        hostvars[name] = jinja2.StrictUndefined(
            hint=f"host variable {name!r} of {host} could not be rendered: {reason}", name=name)
    return hostvars


def report_of(res: dict[str, Any]) -> dict[str, Any]:
    """The part of render_host_vars' task result that doe keeps."""
    return {"host_vars": res.get("host_vars") or {}, "unrendered": res.get("unrendered") or {}}


def stored_reports_file(suite_dir: Path) -> Path:
    return suite_dir / ".doe" / "host_vars.json"


def save_reports(suite_dir: Path, reports: dict[str, dict]) -> None:
    path = stored_reports_file(suite_dir)
    write_atomic(path, json.dumps(reports, indent=1, sort_keys=True))
    path.chmod(0o600)  # rendered values may hold what env lookups returned


def load_reports(suite_dir: Path) -> dict[str, dict] | None:
    """The render reports of a suite whose hosts were set up; None if there are none (or unreadable)."""
    try:
        reports = json.loads(stored_reports_file(suite_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return reports if isinstance(reports, dict) else None

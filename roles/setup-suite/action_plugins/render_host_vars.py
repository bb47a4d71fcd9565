"""Render host variables with Ansible's own templating, in the host's context, for the controller.

doe-suite projects build host variables from others (`exp_code_dir: "{{ remote.dir }}/code"`); designs
read them through `at_runtime`. Only Ansible knows the host's context (inventory, group_vars, extra
vars), so the setup reports the rendered values, each in full, and why a value could not be rendered.
"""

from __future__ import annotations

from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False  # rendering happens on the controller

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        rendered, unrendered = {}, {}
        for name in self._task.args.get("names") or []:
            if name not in task_vars:
                continue  # not a variable of this host (e.g. group_vars of another host type)
            try:
                rendered[name] = self._templar.template(task_vars[name])
            except Exception as error:  # noqa: BLE001 - any failure of a project's template is reported per name
                lines = str(error).strip().splitlines() or [type(error).__name__]
                unrendered[name] = lines[0]
        result.update(changed=False, host_vars=rendered, unrendered=unrendered)
        return result

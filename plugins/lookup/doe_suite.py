"""Lookup: a suite's id, results folder, host plan and host types' settings for the AWS playbooks run by hand.

    lookup('doe_suite', 'my_suite', id='last', with_plan=true)

Runs doe's own design expansion (doe_cli.clouds.aws.playbook_inputs), so it needs the ansible-playbook of
doe's environment (`make install`; .venv/bin/ansible-playbook).
"""

from __future__ import annotations

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

DOCUMENTATION = """
    name: doe_suite
    short_description: a doe suite's id, results folder, host plan and host types' settings
    description:
      - Expands the suite's design as doe does and returns
        {config_dir, suite, suite_id, suite_dir, inventory_file, host_plan, aws_host_types}; aws_host_types are
        the AWS settings of the plan's host types from their group_vars, checked and with defaults, as doe
        passes them (doe_aws_host_types).
    options:
      _terms:
        description: The suite (a design in designs/).
        required: true
      id:
        description: "'' (none), 'new', 'last' or a suite id."
        type: str
        default: ''
      with_plan:
        description: Expand the design into the host plan (and the settings of its host types).
        type: bool
        default: true
"""


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        try:
            from doe_cli.clouds.aws.playbook_inputs import suite_inputs
            from doe_cli.errors import DoeError
        except ImportError as missing:
            raise AnsibleLookupError(f"doe is not importable from this ansible-playbook ({missing}); run the "
                                     "ansible-playbook of doe's environment (make install, then "
                                     ".venv/bin/ansible-playbook)") from None
        try:
            return [suite_inputs(str(term), self.get_option("id") or "", with_plan=self.get_option("with_plan"))
                    for term in terms]
        except DoeError as error:
            raise AnsibleLookupError(str(error)) from None

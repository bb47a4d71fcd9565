"""Vars plugin: the doe config dir's group_vars/ for every inventory, playbook and host.

Ansible reads group_vars/ only beside the inventory file and the playbook. doe keeps them in its
config dir, so a plain `ansible-playbook -i inventory/<name>.yml playbooks/<p>.yml` (and the implicit
localhost of the AWS playbooks) would miss them. The config dir is found as doe finds it:
$DOE_CONFIG_DIR, else $DOES_PROJECT_DIR/doe-suite-config, else this repository. doe passes its own
config dir as $DOE_CONFIG_DIR to every playbook it runs.

Loaded after host_group_vars (see vars_plugins_enabled in ansible.cfg), so the config dir's current
files win over the copies doe leaves beside a suite's inventory.
"""

from __future__ import annotations

import os

from ansible.inventory.group import InventoryObjectType
from ansible.plugins.vars.host_group_vars import VarsModule as HostGroupVarsModule

DOCUMENTATION = """
    name: doe_group_vars
    short_description: group_vars of the doe config dir
    description:
      - Loads group_vars/<group> of the doe config dir ($DOE_CONFIG_DIR, else
        $DOES_PROJECT_DIR/doe-suite-config, else the doe repository) for every group.
    options:
      stage:
        ini:
          - key: stage
            section: vars_doe_group_vars
        env:
          - name: ANSIBLE_VARS_PLUGIN_STAGE
    extends_documentation_fragment:
      - vars_plugin_staging
"""

_REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def config_dir() -> str:
    if os.environ.get("DOE_CONFIG_DIR"):
        return os.path.expanduser(os.environ["DOE_CONFIG_DIR"])
    if os.environ.get("DOES_PROJECT_DIR"):
        return os.path.join(os.path.expanduser(os.environ["DOES_PROJECT_DIR"]), "doe-suite-config")
    return _REPOSITORY


class VarsModule(HostGroupVarsModule):
    REQUIRES_ENABLED = True
    is_stateless = True

    def get_vars(self, loader, path, entities, cache=True):
        groups = [e for e in (entities if isinstance(entities, list) else [entities])
                  if getattr(e, "base_type", None) is InventoryObjectType.GROUP]
        if not groups:
            return {}
        # host_group_vars reads <dir>/group_vars/<group>: point it at the config dir instead of `path`.
        return super().get_vars(loader, os.path.join(config_dir(), ""), groups, cache=cache)

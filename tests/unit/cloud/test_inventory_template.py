"""Inventory templates as doe-suite renders them: host types, group_vars, env lookups, mandatory/bool."""

from __future__ import annotations

import pytest
import yaml

from doe_cli.clouds.inventory_template import InventoryVars, render
from doe_cli.errors import UserError

# The shape of doe-suite's own inventory/euler.yml (its check, its loop over host types, its variables).
EULER_STYLE = """\
# Valid: {{ ('True' if is_single_host_per_host_type | bool and is_single_host_type_per_exp | bool) \
| mandatory('Cloud=euler only supports single instance experiments') }}
all:
  children:
{% for ht, exps in host_types.items() %}
    {{ ht }}:
      hosts:
{% for i in range(exps | length) %}
        {{ ht }}_{{ i }}:
          ansible_host: login.example.org
          ansible_user: {{ euler_user }}
          job_scheduler: slurm
          remote_dir: /cluster/home/{{ euler_user }}/doe-suite/{{ prj_id }}/{{ suite }}
{% endfor %}
{% endfor %}
"""

SINGLE = {"small": {"exp_a": {"n": 1}, "exp_b": {"n": 1}}, "gpu": {"exp_c": {"n": 1}}}


def variables(host_types=SINGLE, group_vars=None, defaults=None) -> InventoryVars:
    def load():
        if host_types is None:
            raise AssertionError("the design must not be loaded for this inventory")
        return host_types

    return InventoryVars(suite="demo", cloud="euler", group_vars=group_vars or {"prj_id": "example_{{ suffix }}"},
                         defaults={"suffix": "x1", "euler_user": "ann", **(defaults or {})}, host_types=load)


def test_doe_suites_euler_inventory_gets_a_host_per_experiment_of_each_host_type():
    rendered = yaml.safe_load(render(EULER_STYLE, "inventory/euler.yml", variables()))
    hosts = rendered["all"]["children"]
    assert list(hosts["small"]["hosts"]) == ["small_0", "small_1"] and list(hosts["gpu"]["hosts"]) == ["gpu_0"]
    assert hosts["small"]["hosts"]["small_1"]["remote_dir"] == "/cluster/home/ann/doe-suite/example_x1/demo"


@pytest.mark.parametrize("host_types", [
    {"client": {"exp": {"n": 2}}},                              # two hosts of one type
    {"client": {"exp": {"n": 1}}, "server": {"exp": {"n": 1}}},  # two host types in one experiment
])
def test_the_inventorys_own_mandatory_check_stops_with_its_message(host_types):
    with pytest.raises(UserError) as caught:
        render(EULER_STYLE, "inventory/euler.yml", variables(host_types))
    assert str(caught.value) == "inventory/euler.yml: Cloud=euler only supports single instance experiments"


def test_the_design_is_loaded_only_for_an_inventory_that_reads_it():
    text = "small:\n  hosts:\n    h: {ansible_user: '{{ euler_user }}', home: \"{{ lookup('env', 'HOME') }}\"}\n"
    rendered = yaml.safe_load(render(text, "inventory/x.yml", variables(host_types=None)))
    assert rendered["small"]["hosts"]["h"]["ansible_user"] == "ann" and rendered["small"]["hosts"]["h"]["home"]


def test_group_vars_win_over_doe_suites_defaults_and_keep_their_types():
    found = variables(group_vars={"euler_user": "{{ 'bo' + 'b' }}", "cores": "{{ 2 * 2 }}"})
    assert render("{{ euler_user }} {{ cores + 1 }}", "f", found) == "bob 5"


@pytest.mark.parametrize(("text", "group_vars", "message"), [
    ("{{ nobody }}", {}, "inventory/x.yml: template error: 'nobody' is undefined"),
    ("{{ a }}", {"a": "{{ b }}", "b": "{{ a }}"}, "group_vars/all/main.yml: a: template error: the value is defined in terms of itself"),
    ("{% for x in %}", {}, "inventory/x.yml:1: template error: Expected an expression"),
    ("{{ lookup('file', '/etc/passwd') }}", {},
     "inventory/x.yml: only lookup('env', ...) is supported in inventories, not 'file'"),
])
def test_template_problems_name_the_inventory(text, group_vars, message):
    with pytest.raises(UserError) as caught:
        render(text, "inventory/x.yml", variables(group_vars=group_vars))
    assert str(caught.value).startswith(message), str(caught.value)

"""The suite design engine: load and validate a design, enumerate its runs, render them, write them.

    suite = load_suite(project, "example01-minimal", variables={...}, strict=False)
    suite.extend(exp_host_lst=None)   # experiment -> run configs (suite_design_ext.yml)
    suite.write_resolved(path)        # suite_design.yml
"""

from doe_cli.design.loader import design_loader, load_raw_design, load_stored_suite, load_suite
from doe_cli.design.model import Experiment, HostType, Suite
from doe_cli.design.yamlio import config_json, dump_yaml, write_atomic

__all__ = [
    "Experiment", "HostType", "Suite", "config_json", "design_loader", "dump_yaml", "load_raw_design",
    "load_stored_suite", "load_suite", "write_atomic",
]

"""Design expansion speed: 10,000 and 100,000 runs (targets: under 1 s and under 10 s).

The design has 4 (or 5) cross factors of 10 levels, a value that references other values and `[% %]`
references in $CMD$. The $CMD$ syntax check (run only by `doe run`, `doe design` and design-validate,
not part of the targets) is timed for the smaller design. Printed per size: seconds, runs/s, and the ratio to a baseline measured in the same
run (building the same number of plain dicts with itertools.product and json.dumps-ing them), so
figures from different machines can be compared.
"""

from __future__ import annotations

import itertools
import json
import sys
import tempfile
import time
from pathlib import Path

from doe_cli.config import Project
from doe_cli.design import load_suite
from doe_cli.design.cmdcheck import check_extended_commands

TARGETS = {10_000: 1.0, 100_000: 10.0}


def write_config(root: Path, n_factors: int) -> Project:
    (root / "group_vars" / "all").mkdir(parents=True)
    (root / "group_vars" / "all" / "main.yml").write_text("prj_id: bench\n")
    (root / "group_vars" / "client").mkdir()
    (root / "designs").mkdir()
    factors = "\n".join(f"    f{i}: {{$FACTOR$: {list(range(10))}}}" for i in range(n_factors))
    (root / "designs" / "bench.yml").write_text(f"""\
bench:
  n_repetitions: 3
  host_types:
    client:
      n: 2
      $CMD$: "./app --threads [% my_run.f0 %] --size [% my_run.f1 %] --out [% my_run.label | quote %]"
  base_experiment:
    seed: 42
    label: "run-[% my_run.f0 %]-[% my_run.f1 %]-[% run %]"
    options: {{mode: fast, retries: 3}}
{factors}
""")
    return Project(config_dir=root, results_dir=root / "results")


def expand(project: Project) -> tuple[float, int, dict]:
    start = time.perf_counter()
    suite = load_suite(project, "bench")
    extended = suite.extend(check_commands=False)
    return time.perf_counter() - start, len(extended["bench"]), extended


def command_check(extended: dict, design: Path) -> float:
    start = time.perf_counter()
    check_extended_commands(extended, design)
    return time.perf_counter() - start


def baseline(n_factors: int) -> float:
    start = time.perf_counter()
    for combo in itertools.product(*[range(10)] * n_factors):
        config = {"seed": 42, "options": {"mode": "fast", "retries": 3}}
        config.update({f"f{i}": level for i, level in enumerate(combo)})
        json.dumps(config)
    return time.perf_counter() - start


def main() -> int:
    failed = False
    for runs, target in TARGETS.items():
        n_factors = len(str(runs)) - 1
        with tempfile.TemporaryDirectory() as tmp:
            project = write_config(Path(tmp), n_factors)
            seconds, produced, extended = expand(project)
            if runs == min(TARGETS):
                check_seconds = command_check(extended, project.design_file("bench"))
        assert produced == runs, produced
        base = baseline(n_factors)
        ok = seconds < target
        failed |= not ok
        verdict = "ok" if ok else "MISSED"
        print(f"design expansion {runs:>7} runs: {seconds:6.2f} s, {runs / seconds:>9,.0f} runs/s, "
              f"{seconds / base:5.1f}x baseline ({base:.2f} s); target < {target:.0f} s: {verdict}")
    print(f"command check (bash -n on each distinct command, shellcheck on a sample), {min(TARGETS)} runs "
          f"x 2 hosts: {check_seconds:.2f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

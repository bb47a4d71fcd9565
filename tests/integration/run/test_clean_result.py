"""`doe clean-result` on real local runs (real tsp and Ansible): a complete run stays; a run that stopped
early is deleted only after yes, and only once no doe run holds it and its hosts are gone."""

from __future__ import annotations

import os
import signal

import pytest

from doe_cli.run.status import controller_running
from tests.integration.run.conftest import Doe, make_config_dir, wait_for

pytestmark = [pytest.mark.tsp, pytest.mark.slow]

DONE = """
done:
  host_types:
    small:
      $CMD$: echo "[% my_run.i %]"
  base_experiment:
    i:
      $FACTOR$: [1, 2]
"""

# The second job waits for a gate that never opens: the run stops with one job of two done.
STOPPED = """
stopped:
  host_types:
    small:
      $CMD$: >-
        if [ "[% my_run.i %]" = 2 ]; then while [ ! -e "{shared}/never" ]; do sleep 0.05; done; fi; echo ran
  base_experiment:
    i:
      $FACTOR$: [1, 2]
"""


@pytest.fixture(scope="module")
def doe(short_tmp) -> Doe:
    root = short_tmp / "clean-result"
    shared = root / "shared"
    shared.mkdir(parents=True)
    config = make_config_dir(root, {"done": DONE, "stopped": STOPPED.format(shared=shared)})
    return Doe(config, root / "results", root / "hosts")


def test_only_the_incomplete_run_is_deleted_and_only_after_yes(doe):
    doe("run", "--suite", "done", "--id", "new")
    complete = doe.suite_dir("done")
    stopped = doe("run", "--suite", "stopped", "--id", "new", "--timeout", "3", check=False)
    assert stopped.returncode == 1 and "stopped after --timeout 3 s" in stopped.stderr, stopped.stderr
    incomplete = doe.suite_dir("stopped")

    # Its hosts still run the second job: deleting the folder would lose what they still deliver.
    kept = doe("clean-result", "--yes")
    assert kept.stdout == "", kept.stdout
    assert f"skipping {incomplete.name}: its hosts are still set up" in kept.stderr
    assert "no incomplete result folder to delete" in kept.stderr and incomplete.is_dir()

    # A resumed run holds the folder while it runs.
    resumed = doe.popen("run", "--suite", "stopped", "--id", "last")
    try:
        wait_for(lambda: controller_running(incomplete), timeout=60, what="the resumed run's lock")
        live = doe("clean-result", "--yes")
        assert f"skipping {incomplete.name}: a doe run is using it" in live.stderr, live.stderr
        assert incomplete.is_dir()
    finally:
        os.killpg(resumed.pid, signal.SIGINT)  # Ctrl-C: the run stops, its hosts stay
        resumed.communicate(timeout=60)
    assert resumed.returncode == 130

    doe("clean", "--cloud", "local", "--suite", "stopped", "--id", "last", "--yes")  # the hosts go
    listed = doe("clean-result", "--dry-run")
    suite_id = incomplete.name.rsplit("_", 1)[1]
    assert listed.stdout.splitlines() == [f"{incomplete.name}: suite stopped, id {suite_id}, 1/2 jobs done"], \
        listed.stdout
    assert "would delete 1 incomplete result folder(s)" in listed.stderr

    declined = doe("clean-result", answer="n\n", check=False)
    assert declined.returncode == 1 and "[y/N]" in declined.stderr
    assert declined.stderr.strip().endswith("error: nothing deleted: not confirmed (--yes deletes without asking)")
    assert incomplete.is_dir() and complete.is_dir()

    deleted = doe("clean-result", answer="y\n")
    assert "deleted 1 incomplete result folder(s)" in deleted.stderr, deleted.stderr
    assert not incomplete.exists()
    assert (complete / "done/run_1/rep_0/small/host_0/stdout.log").read_text() == "2\n"  # the complete run stays

"""A real `doe run --cloud aws` against the emulator with a budget smaller than a minute of its one instance:
budget_80 reaches a loopback webhook exactly once, and the status page (the run's and `doe status --html`'s)
shows the cost so far and the budget, frozen once the instance is deleted."""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from doe_cli.clouds.aws.cost import CostLedger
from tests.integration.run.conftest import Doe, wait_for
from tests.integration.test_notify import webhook_server  # noqa: F401 - a fixture
from tests.support.sshd_hosts import SshHostPool, close_control_masters

from .conftest import tagged, write_config

pytestmark = [pytest.mark.aws_fake, pytest.mark.slow]

DESIGN = """
tiny:
  n_repetitions: 3
  host_types:
    small:
      $CMD$: echo ran
  base_experiment:
    x: 1
"""
PRICE = 2.016  # r6i.8xlarge, per hour: a minute costs $0.0336


@pytest.fixture
def one_host_env(moto_endpoint, ssh_key):
    if shutil.which("nsenter") is None or not Path("/usr/sbin/sshd").exists():
        pytest.skip("needs openssh-server")
    root = Path(tempfile.mkdtemp(prefix="doe-aws-cost-", dir="/tmp"))
    pool = SshHostPool(1).start()
    try:
        project = write_config(root / "config", ssh_key, project_id="cost_test", aws_setup_roles=[],
                               aws_budget_usd=0.01,
                               aws_inventory_host_overrides={"small": {0: pool.hosts[0].inventory_vars()}})
        (project.config_dir / "designs" / "cheap.yml").write_text(DESIGN)
        yield Doe(project.config_dir, project.results_dir, root / "local")
    finally:
        for suite_dir in (root / "config" / "results").glob("*_*"):
            from doe_cli.run.ansible_env import control_path_dir

            close_control_masters(control_path_dir(suite_dir))
        pool.close()
        shutil.rmtree(root, ignore_errors=True)


def _page_cost(page: Path) -> tuple[float, float]:
    found = re.search(r'id="cost" data-usd="([0-9.]+)" data-budget-usd="([0-9.]+)"', page.read_text())
    assert found, "no cost on the page"
    return float(found[1]), float(found[2])


def test_a_small_budget_sends_budget_80_once_and_the_page_shows_cost_and_budget(one_host_env, webhook_server, ec2):  # noqa: F811
    doe = one_host_env
    hook = f"http://127.0.0.1:{webhook_server.server_port}/hooks/SECRET"
    # The plan's estimate is over the budget: --yes accepts it.
    done = doe("run", "--suite", "cheap", "--cloud", "aws", "--yes", "--notify", hook,
               timeout=600)
    suite_dir = doe.suite_dir("cheap")
    wait_for(lambda: any(p["body"]["event"] == "finished" for p in webhook_server.received), timeout=30,
             what="the finished event")
    time.sleep(1)  # a duplicate sent at a later poll would have arrived by now
    events = [p["body"]["event"] for p in webhook_server.received]
    assert events.count("budget_80") == 1, events
    (alert,) = [p["body"] for p in webhook_server.received if p["body"]["event"] == "budget_80"]
    assert "of the budget $0.01" in alert["message"] and alert["counts"]["total"] == 3

    ledger = CostLedger.load(suite_dir)
    assert ledger is not None and len(ledger.instances) == 1
    (charge,) = ledger.instances.values()
    assert charge.instance_type == "r6i.8xlarge" and charge.usd_per_hour == PRICE and charge.ended is not None
    usd, budget = _page_cost(suite_dir / "status.html")
    assert budget == 0.01 and usd == pytest.approx(charge.usd(charge.ended, 6 * 3600), abs=1e-4)
    assert usd >= PRICE / 60 - 1e-4  # at least a minute billed
    text = (suite_dir / "status.html").read_text()
    assert "cost so far: <b>$0.03</b> of the budget $0.01" in text and "SECRET" not in text
    # The instance is deleted: `doe status --html` later shows the same, frozen cost.
    assert not any(tagged(ec2, "doe:suite_id", suite_dir.name.rsplit("_", 1)[1]).values())
    doe("status", "--suite", "cheap", "--id", "last", "--html")
    assert _page_cost(suite_dir / "status.html") == (usd, budget)
    assert "SECRET" not in done.stderr

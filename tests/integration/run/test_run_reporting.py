"""A real local run tells about itself: its status page, and notifications to a loopback webhook."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.integration.run.conftest import Doe, make_config_dir, wait_for
from tests.support.sshd_hosts import free_port

pytestmark = pytest.mark.tsp

# Two of six jobs fail; the ETL of the others fails too (it expects a file no job writes).
SUITE = """
told:
  n_repetitions: 3
  host_types:
    small:
      $CMD$: >-
        if [ "[% my_run.n %]" = 2 ]; then echo "broken input" >&2; exit 4; fi; echo ok
  base_experiment:
    n:
      $FACTOR$: [1, 2]
"""


@pytest.fixture
def webhook():
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server, received
    server.shutdown()


def test_a_run_with_failures_sends_the_first_failure_once_and_the_end_and_writes_its_page(webhook, tmp_path,
                                                                                          short_tmp):
    server, received = webhook
    config = make_config_dir(tmp_path, {"told": SUITE})
    dead = f"http://127.0.0.1:{free_port()}/hook/SECRET"
    (config / "group_vars" / "all" / "main.yml").write_text(
        (config / "group_vars" / "all" / "main.yml").read_text()
        + f"notify:\n  - webhook: http://127.0.0.1:{server.server_port}/hook/SECRET\n  - webhook: {dead}\n")
    doe = Doe(config, tmp_path / "results", short_tmp / "local")
    done = doe("run", "--suite", "told", "--id", "new", check=False)
    assert done.returncode == 1, done.stderr
    suite_dir = doe.suite_dir("told")
    log_file = suite_dir / ".doe" / "notify.log"
    # The dead target's retries outlast the run: doe returned before they were given up.
    assert "not sent" not in (log_file.read_text() if log_file.exists() else "")
    wait_for(lambda: len(received) >= 2, what="two events at the webhook")
    events = [body["event"] for body in received]
    assert sorted(events) == ["failed", "finished"], events  # one failure message, not one per failed job
    final = next(body for body in received if body["event"] == "finished")
    assert final["counts"] == {"finished": 3, "failed": 3, "total": 6} and final["suite"] == "told"
    assert "6/6 jobs, 3 failed" in final["message"]
    first = next(body for body in received if body["event"] == "failed")
    assert re.match(r"first failed job: told run 1 rep \d \(exit code 4\)", first["message"]), first
    log = wait_for(lambda: "not sent" in (text := log_file.read_text()) and text, what="the dead target given up",
                   timeout=60)
    assert "SECRET" not in log and "SECRET" not in done.stderr

    page = (suite_dir / "status.html").read_text()
    assert 'http-equiv="refresh"' not in page and "broken input" in page
    assert re.search(r'data-count="failed">3<', page) and "told-small-0" in page


def test_notify_settings_that_are_wrong_stop_the_run_before_anything_is_created(tmp_path, short_tmp):
    config = make_config_dir(tmp_path, {"told": SUITE})
    (config / "group_vars" / "all" / "main.yml").write_text(
        (config / "group_vars" / "all" / "main.yml").read_text() + "notify:\n  - mail: me@example.org\n")
    doe = Doe(config, tmp_path / "results", short_tmp / "local")
    done = doe("run", "--suite", "told", "--id", "new", check=False)
    assert done.returncode == 2 and done.stderr.startswith("error: group_vars/all/main.yml: notify[0]: expected")
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())

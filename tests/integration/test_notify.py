"""Notifications reach a real HTTP server on loopback and a command, from a detached sender process."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from doe_cli.errors import UserError
from doe_cli.notify import Notifier, Target, parse_targets
from tests.integration.run.conftest import wait_for
from tests.support.sshd_hosts import free_port


@pytest.fixture
def webhook_server():
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"path": self.path, "body": json.loads(body)})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.received = received
    yield server
    server.shutdown()


def test_an_event_reaches_the_webhook_and_the_command_and_the_log_hides_the_secret(webhook_server, tmp_path):
    url = f"http://127.0.0.1:{webhook_server.server_port}/services/T000/SECRET-TOKEN"
    marker = tmp_path / "command.env"
    notifier = Notifier([Target(webhook=url), Target(command=f'env | grep ^DOE_ | sort > "{marker}"')],
                        "s", 42, tmp_path / "s_42")
    notifier.send("failed", {"finished": 3, "failed": 1}, "first failed job: e run 0 rep 1 (exit code 3)")
    notifier.send("failed", {"finished": 3, "failed": 2}, "a second failure: no second message")
    wait_for(lambda: marker.exists() and marker.read_text(), what="the command ran")
    (post,) = webhook_server.received
    assert post["path"] == "/services/T000/SECRET-TOKEN"
    body = post["body"]
    assert (body["event"], body["suite"], body["id"], body["counts"]) == ("failed", "s", "42",
                                                                         {"finished": 3, "failed": 1})
    assert body["text"].startswith("doe s_42: first failed job") and body["link"].endswith("s_42/status.html")
    assert "DOE_EVENT=failed\n" in marker.read_text() and "DOE_SUITE_ID=42\n" in marker.read_text()
    log = wait_for(lambda: (text := (tmp_path / "s_42/.doe/notify.log").read_text()).count("sent") == 2 and text,
                   what="both deliveries logged")
    assert "SECRET" not in log and "T000" not in log and f"127.0.0.1:{webhook_server.server_port}/..." in log


def test_a_dead_target_is_retried_then_logged_after_the_caller_went_on(tmp_path, monkeypatch):
    monkeypatch.setenv("DOE_NOTIFY_FIRST_DELAY", "0.05")
    dead = f"http://127.0.0.1:{free_port()}/hook?token=SECRET"
    Notifier([Target(webhook=dead)], "s", 1, tmp_path / "s_1").send("finished", {"finished": 1}, "done")
    log_file = tmp_path / "s_1/.doe/notify.log"
    assert not log_file.exists()  # send() returned before the first attempt failed
    log = wait_for(lambda: log_file.exists() and log_file.read_text(), what="the failure logged", timeout=30)
    assert "finished: not sent to webhook http://127.0.0.1:" in log and "after 4 attempts" in log
    assert "SECRET" not in log


@pytest.mark.parametrize(("value", "expected"), [
    ({"webhook": "x"}, "notify: expected a list"),
    ([{"email": "a@b"}], "notify[0]: expected {webhook: URL} or {command:"),
    ([{"webhook": "ftp://host/x"}], "notify[0].webhook: expected an http:// or https:// URL"),
    ([{"command": " "}], "notify[0].command: expected a non-empty command"),
])
def test_bad_notify_settings_name_the_file_and_key(value, expected):
    with pytest.raises(UserError) as caught:
        parse_targets(value, "group_vars/all/main.yml")
    assert str(caught.value).startswith("group_vars/all/main.yml: ") and expected in str(caught.value)

"""The ansible-runner adapter driving real ansible-playbook runs on this machine."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from doe_cli.ansible_adapter import AnsibleAdapter

SECRET_VALUE = "doe-test-secret-value-8c1f"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed once the probe is: nothing listens there


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump({"all": {"hosts": {
        "here": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
        "nowhere": {"ansible_host": "127.0.0.1", "ansible_port": _closed_port(),
                    "ansible_ssh_common_args": "-o ConnectTimeout=5 -o BatchMode=yes"},
    }}}))
    return path


def _playbook(tmp_path: Path, name: str, tasks: list[dict], hosts: str = "here") -> str:
    path = tmp_path / f"{name}.yml"
    path.write_text(yaml.safe_dump([{"name": name, "hosts": hosts, "gather_facts": False, "tasks": tasks}]))
    return str(path)  # absolute: the adapter's playbook dir does not apply


def test_results_and_stats_come_from_events(tmp_path, inventory):
    adapter = AnsibleAdapter(tmp_path / "work")
    playbook = _playbook(tmp_path, "ok", [
        {"name": "Say hello", "ansible.builtin.command": {"argv": ["echo", "hello {{ who }}"]}, "changed_when": False},
    ])
    result = adapter.run(playbook, inventory=inventory, extravars={"who": "doe"}, limit="here")
    assert result.ok, result.summary()
    assert result.stats["processed"] == {"here": 1}
    assert result.task_results("Say hello")["here"]["stdout"] == "hello doe"
    assert result.failures() == [] and result.failed_hosts() == set()


def test_set_stats_data_comes_back_as_data_also_when_the_play_then_fails(tmp_path, inventory):
    adapter = AnsibleAdapter(tmp_path / "work")
    playbook = _playbook(tmp_path, "reports", [
        {"name": "Report a finding", "ansible.builtin.set_stats": {"data": {"found": {"kind": ["a", "b"]}},
                                                                   "aggregate": False}},
        {"name": "Report an error", "ansible.builtin.set_stats": {"data": {"error": "group_vars/all: key: bad"}}},
        {"name": "Stop", "ansible.builtin.fail": {"msg": "stopped"}},
    ])
    result = adapter.run(playbook, inventory=inventory, limit="here")
    assert not result.ok
    assert result.data == {"found": {"kind": ["a", "b"]}, "error": "group_vars/all: key: bad"}


def test_a_failed_task_names_host_task_and_the_commands_last_words(tmp_path, inventory):
    adapter = AnsibleAdapter(tmp_path / "work")
    command = "echo first; echo writing >&2; echo disk is full >&2; echo; echo 'make: *** Error 1' >&2; exit 3"
    playbook = _playbook(tmp_path, "fails", [
        {"name": "Fail loudly", "ansible.builtin.command": {"argv": ["sh", "-c", command]}, "changed_when": False},
    ])
    result = adapter.run(playbook, inventory=inventory, limit="here")
    assert not result.ok
    assert result.failed_hosts() == {"here"}
    [failure] = result.failures()
    assert (failure.host, failure.task, failure.unreachable, failure.role) == ("here", "Fail loudly", False, None)
    assert failure.message == "non-zero return code: writing / disk is full / make: *** Error 1"


def test_an_unknown_module_in_an_included_role_is_an_error_naming_module_and_file(tmp_path, inventory):
    tasks = tmp_path / "roles" / "installs_tool" / "tasks"
    tasks.mkdir(parents=True)
    (tasks / "main.yml").write_text("- name: Install the tool\n  community.general.no_such_module:\n    name: tool\n")
    adapter = AnsibleAdapter(tmp_path / "work", roles_paths=[tmp_path / "roles"])
    playbook = _playbook(tmp_path, "unknown_module", [
        {"name": "Say hello", "ansible.builtin.debug": {"msg": "hello"}},
        {"name": "Run the role", "ansible.builtin.include_role": {"name": "installs_tool"}},
    ])
    result = adapter.run(playbook, inventory=inventory, limit="here")
    # Ansible resolves the module only when the include loads the role: no host's task fails.
    assert not result.ok and result.failures() == []
    [error] = result.errors()
    assert error.task == "Run the role"
    assert error.message.startswith("couldn't resolve module/action 'community.general.no_such_module'")
    assert error.message.endswith(f"({tasks / 'main.yml'}:1:3)")
    assert result.summary() == f"Ansible stopped at task 'Run the role': {error.message}"


def test_a_host_that_does_not_answer_is_unreachable_not_failed(tmp_path, inventory):
    adapter = AnsibleAdapter(tmp_path / "work")
    playbook = _playbook(tmp_path, "unreachable", [
        {"name": "Touch the host", "ansible.builtin.raw": "true", "changed_when": False},
    ], hosts="all")
    result = adapter.run(playbook, inventory=inventory)
    assert result.unreachable_hosts() == {"nowhere"}
    assert "here" not in result.unreachable_hosts() and result.failed_hosts() == set()
    assert [f.host for f in result.failures() if f.unreachable] == ["nowhere"]


def test_secrets_never_stay_in_the_command_artifact_even_during_the_run(tmp_path, inventory, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_VALUE)
    adapter = AnsibleAdapter(tmp_path / "work")
    playbook = _playbook(tmp_path, "secret", [
        {"name": "Run while the artifact is checked", "ansible.builtin.raw": "true", "changed_when": False},
    ])
    seen_during_run: list[str] = []

    def on_event(event: dict) -> None:
        # A controller killed at this point leaves the artifact as it is now.
        if event.get("event") == "playbook_on_task_start":
            seen_during_run.extend(p.read_text() for p in (tmp_path / "work").glob("*/artifacts/*/command"))

    result = adapter.run(playbook, inventory=inventory, limit="here", on_event=on_event)
    assert result.ok, result.summary()
    assert seen_during_run, "the command artifact should exist while the playbook runs"
    after = [p.read_text() for p in (tmp_path / "work").glob("*/artifacts/*/command")]
    for text in [*seen_during_run, *after]:
        assert SECRET_VALUE not in text
        assert json.loads(text)["env"]["AWS_SECRET_ACCESS_KEY"] == "<redacted>"


def test_cancel_stops_the_playbook_before_its_next_task(tmp_path, inventory):
    adapter = AnsibleAdapter(tmp_path / "work")
    marker = tmp_path / "second-task-ran"
    playbook = _playbook(tmp_path, "cancel", [
        {"name": "Take a while", "ansible.builtin.command": {"argv": ["sleep", "30"]}, "changed_when": False},
        {"name": "Leave a marker", "ansible.builtin.command": {"argv": ["touch", str(marker)]}, "changed_when": True},
    ])
    started: list[str] = []

    def on_event(event: dict) -> None:
        if event.get("event") == "playbook_on_task_start":
            started.append(event["event_data"]["task"])

    result = adapter.run(playbook, inventory=inventory, limit="here", on_event=on_event, cancel=lambda: bool(started))
    assert result.status == "canceled" and not result.ok
    assert started == ["Take a while"]
    assert not marker.exists()


def _processes_running(needle: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes()
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if needle.encode() in cmdline and state != "Z":
            found.append(int(proc.name))
    return found


def test_a_playbook_ends_when_its_controller_is_killed(tmp_path, inventory):
    """The launcher's watcher: no terminal hang-up here (a killed runner's pty would send one), so only the
    watcher can notice that the parent is gone while a task still has a minute to go."""
    started = tmp_path / "started"
    playbook = _playbook(tmp_path, "orphan", [
        {"name": "Say it runs", "ansible.builtin.command": {"argv": ["touch", str(started)]}, "changed_when": True},
        {"name": "Wait long", "ansible.builtin.raw": "sleep 60", "changed_when": False},
    ])
    launcher = AnsibleAdapter(tmp_path / "work")._launcher()
    controller_code = (
        "import subprocess, sys; subprocess.Popen(sys.argv[1:], start_new_session=True, "
        "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).wait()")
    env = {**os.environ, "ANSIBLE_CONFIG": str(tmp_path / "none.cfg")}
    controller = subprocess.Popen([sys.executable, "-c", controller_code, str(launcher), "-i", str(inventory),
                                   "--limit", "here", playbook], env=env)
    try:
        deadline = time.monotonic() + 120
        while not started.exists():
            assert controller.poll() is None and time.monotonic() < deadline, "the playbook did not start"
            time.sleep(0.05)
        assert _processes_running(playbook), "the playbook should run"
        os.kill(controller.pid, signal.SIGKILL)
        controller.wait()
        deadline = time.monotonic() + 20
        while _processes_running(playbook) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _processes_running(playbook) == [], "ansible-playbook outlived its controller"
    finally:
        for pid in _processes_running(playbook):
            os.kill(pid, signal.SIGKILL)


def test_collection_routing_is_parsed_once_then_read_from_the_cache(tmp_path, inventory, monkeypatch):
    """The launcher keeps Ansible's parsed routing metadata by content hash; a damaged entry is parsed again."""
    import marshal

    import ansible

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    adapter = AnsibleAdapter(tmp_path / "work")
    playbook = _playbook(tmp_path, "noop", [{"name": "Do nothing", "ansible.builtin.meta": "noop"}])
    assert adapter.run(playbook, inventory=inventory, limit="here").ok
    entries = list((tmp_path / "cache" / "doe").glob("ansible-routing-*/*"))
    builtin_yaml = Path(ansible.__file__).parent / "config" / "ansible_builtin_runtime.yml"
    expected = yaml.load(builtin_yaml.read_bytes(), Loader=yaml.CBaseLoader)
    cached = [marshal.loads(entry.read_bytes()) for entry in entries]
    assert expected in cached

    for entry in entries:
        entry.write_bytes(b"\x00damaged")
    result = adapter.run(playbook, inventory=inventory, limit="here")
    assert result.ok, result.summary()
    assert expected in [marshal.loads(entry.read_bytes()) for entry in entries]

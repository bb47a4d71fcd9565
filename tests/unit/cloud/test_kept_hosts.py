"""`doe clean` of kept hosts asks the cloud's KeptHosts hooks, not the cloud's name."""

from __future__ import annotations

from doe_cli.clouds import kept_hosts_of
from doe_cli.run.state import setup_marker


def test_local_hosts_are_left_while_their_folder_or_socket_exists_and_go_after_a_fetch(tmp_path):
    local = kept_hosts_of("local")
    folder = tmp_path / "host"
    hosts = {"e-small-0": {"job_queue_dir": str(folder), "job_queue_ts_socket": str(tmp_path / "ts" / "s.sock")}}
    assert local.hosts_left(tmp_path / "s_1", hosts) == {}
    folder.mkdir()
    assert local.hosts_left(tmp_path / "s_1", hosts) == hosts
    assert local.fetches_first and local.cleanup_vars() == {"doe_remove_host_dir": True}
    assert local.kind == "local host(s)"


def test_ssh_hosts_are_left_while_the_run_has_not_cleaned_up_and_keep_their_files(tmp_path):
    ssh = kept_hosts_of("lab")
    suite_dir = tmp_path / "s_1"
    hosts = {"e-small-0": {"ansible_host": "10.0.0.5"}}
    assert ssh.hosts_left(suite_dir, hosts) == {}
    setup_marker(suite_dir).parent.mkdir(parents=True)
    setup_marker(suite_dir).write_text("setup finished\n")
    assert ssh.hosts_left(suite_dir, hosts) == hosts
    assert not ssh.fetches_first and ssh.cleanup_vars() == {"doe_remove_host_dir": False}
    assert ssh.kind == "host(s) of inventory lab"

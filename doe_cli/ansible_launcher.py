"""ansible-playbook as the adapter starts it: the same CLI, ending with its controller, and cheaper to start and end.

- Start-up allocates much and frees little (imports, Ansible's own YAML), so the garbage collector
  only costs time there (about 0.1 s per run, measured): it is off until the first play starts, when
  everything loaded so far is frozen (later collections skip it) and collection resumes.
- A controller killed with SIGKILL cannot stop its playbook, and ansible-playbook does not notice
  (runner started it in a session of its own): it would go on alone, for ever when it waits on a
  host. Here a watcher thread ends the playbook's whole process group once its parent is gone; the
  host queues keep their jobs and the next `doe run --id last` takes over.
- When a playbook has ended, a plain `ansible-playbook` spends about 0.3 s tearing its interpreter
  down (garbage collection over everything Ansible loaded; strace shows no system call in that
  time), and every doe round waits for it. Here the output is flushed and the exit handlers run
  (Ansible removes its temp dirs, multiprocessing reaps its workers), then the process ends at once
  with the CLI's exit code.
- Every start parses the routing metadata of ansible.builtin and of each collection used (YAML of about
  10,000 lines: 0.15-0.2 s here). Ansible keeps that parser replaceable for implementations that cache
  by content; here the parsed result is kept as marshal data under the user's cache dir, keyed by a
  hash of the YAML text, so a changed file is simply a new key (about 0.01 s to load).

    python -P -m doe_cli.ansible_launcher <ansible-playbook arguments>
"""

from __future__ import annotations

import atexit
import gc
import hashlib
import marshal
import os
import signal
import sys
import threading
import time

PARENT_CHECK_SECONDS = 0.5
TERMINATE_GRACE_SECONDS = 5.0


def _routing_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "doe", f"ansible-routing-py{sys.version_info[0]}{sys.version_info[1]}-m{marshal.version}")


def _cache_collection_routing() -> None:
    try:
        from ansible.utils.collection_loader import _collection_finder
    except ImportError:
        return
    parse = getattr(_collection_finder, "_meta_yml_to_dict", None)
    if parse is None:
        return
    cache_dir = _routing_cache_dir()

    def parse_cached(yaml_data, content_id):
        raw = yaml_data.encode("utf-8") if isinstance(yaml_data, str) else bytes(yaml_data)
        path = os.path.join(cache_dir, hashlib.blake2b(raw, digest_size=20).hexdigest())
        try:
            with open(path, "rb") as handle:
                return marshal.load(handle)
        except (OSError, EOFError, ValueError, TypeError):
            pass
        routing = parse(yaml_data, content_id)
        try:  # best effort: an unwritable cache dir only costs the parse next time
            os.makedirs(cache_dir, exist_ok=True)
            temporary = f"{path}.{os.getpid()}.tmp"
            with open(temporary, "wb") as handle:
                marshal.dump(routing, handle)
            os.replace(temporary, path)
        except (OSError, ValueError):
            pass
        return routing

    _collection_finder._meta_yml_to_dict = parse_cached


def _collect_from_the_first_play() -> None:
    gc.disable()
    try:
        from ansible.executor.task_queue_manager import TaskQueueManager
    except ImportError:  # another Ansible layout: keep the collector as it is
        gc.enable()
        return
    run_play = TaskQueueManager.run

    def run(self, *args, **kwargs):
        if not gc.isenabled():
            gc.freeze()
            gc.enable()
        return run_play(self, *args, **kwargs)

    TaskQueueManager.run = run


def _end_with_the_controller() -> None:
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        # Runner starts the playbook as a process group leader: the group is the playbook with its workers
        # and ssh clients. Anywhere else only this process goes, never a group it merely belongs to.
        own_group = os.getpgrp() == os.getpid()
        for signum in (signal.SIGTERM, signal.SIGKILL):
            if own_group:
                os.killpg(os.getpid(), signum)
            else:
                os.kill(os.getpid(), signum)
            time.sleep(TERMINATE_GRACE_SECONDS)

    threading.Thread(target=watch, name="doe-parent-watch", daemon=True).start()


def main() -> None:
    _end_with_the_controller()
    _collect_from_the_first_play()
    _cache_collection_routing()
    from ansible.cli.playbook import main as ansible_playbook

    sys.argv[0] = "ansible-playbook"
    try:
        ansible_playbook()
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 0 if stop.code is None else 1
    sys.stdout.flush()
    sys.stderr.flush()
    atexit._run_exitfuncs()
    os._exit(code)


if __name__ == "__main__":
    main()

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

    python -P -m doe_cli.ansible_launcher <ansible-playbook arguments>
"""

from __future__ import annotations

import atexit
import gc
import os
import signal
import sys
import threading
import time

PARENT_CHECK_SECONDS = 0.5
TERMINATE_GRACE_SECONDS = 5.0


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

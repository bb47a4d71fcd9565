"""ansible-playbook as the adapter starts it: the same CLI, with two start-up and exit costs cut.

- Start-up allocates much and frees little (imports, Ansible's own YAML), so the garbage collector
  only costs time there (about 0.1 s per run, measured): it is off until the first play starts, when
  everything loaded so far is frozen (later collections skip it) and collection resumes.
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
import sys


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


def main() -> None:
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

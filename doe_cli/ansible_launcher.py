"""ansible-playbook as the adapter starts it: the same CLI, without the interpreter's teardown.

When a playbook has ended, a plain `ansible-playbook` spends about 0.3 s tearing its Python
interpreter down (garbage collection over everything Ansible loaded; measured with strace: no system
call in that time), and every doe round waits for it. Here the output is flushed and the exit
handlers run (Ansible removes its temp dirs, multiprocessing reaps its workers), then the process
ends at once with the CLI's exit code.

    python -P -m doe_cli.ansible_launcher <ansible-playbook arguments>
"""

from __future__ import annotations

import atexit
import os
import sys


def main() -> None:
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

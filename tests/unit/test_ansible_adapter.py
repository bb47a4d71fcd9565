"""How the adapter words a failed task from its runner event."""

from __future__ import annotations

from doe_cli.ansible_adapter import PlaybookResult


def _failed(res: dict) -> PlaybookResult:
    event = {"event": "runner_on_failed", "event_data": {"host": "h", "task": "Build", "role": "tool", "res": res}}
    return PlaybookResult(playbook="p.yml", status="failed", rc=2, stats={}, events=[event])


def test_a_commands_long_output_is_cut_at_the_front_so_its_last_line_stays():
    long_line = "x" * 500
    res = {"msg": "non-zero return code", "rc": 2, "stderr": f"first\n{long_line}\nmake: *** [all] Error 1\n"}
    [failure] = _failed(res).failures()
    assert failure.message.startswith("non-zero return code: ...xxx")
    assert failure.message.endswith(" / make: *** [all] Error 1")
    assert "first" not in failure.message and len(failure.message) < 400


def test_a_command_without_stderr_shows_its_last_lines_of_stdout():
    res = {"msg": "non-zero return code", "rc": 1, "stdout": "one\ntwo\nthree\nfour\n", "stderr": ""}
    result = _failed(res)
    assert result.summary() == "h failed in task 'Build' of role tool: non-zero return code: two / three / four"

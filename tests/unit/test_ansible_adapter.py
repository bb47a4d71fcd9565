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


def test_a_commands_last_twenty_lines_keep_their_layout_for_a_report_below_the_summary():
    compiler = "\n".join(f"line {i}" for i in range(30)) + "\n\n  --> src/main.rs:2:20\n   |\nerror: could not compile\n"
    res = {"msg": "One or more items failed", "results": [
        {"msg": "non-zero return code", "rc": 101, "failed": True, "stderr": compiler, "stdout": "DOE-ignored"}]}
    result = _failed(res)
    assert result.summary(inline_output=False) == \
        "h failed in task 'Build' of role tool: One or more items failed: non-zero return code"
    assert result.summary().endswith("non-zero return code: --> src/main.rs:2:20 / | / error: could not compile")
    lines = result.command_output().splitlines()
    assert lines[0] == "last 20 line(s) of the command's output on h:"
    assert lines[1:] == [f"  line {i}" for i in range(14, 30)] + ["", "    --> src/main.rs:2:20", "     |",
                                                                  "  error: could not compile"]


def test_a_failure_without_command_output_has_no_report_below():
    result = _failed({"msg": "no cargo on h: list rust_toolchain in host_setup_roles"})
    assert result.command_output() == ""
    assert result.summary(inline_output=False) == result.summary()

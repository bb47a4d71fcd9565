"""Every design in tests/designs/bad/ fails with one line naming its file, the offending key and line.

Each bad design states what it expects in header comments:
`# expect-path:` (YAML path in the message), `# expect-message:`, `# expect-line:`, `# expect-file:`.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from doe_cli.design import load_suite
from doe_cli.errors import UserError
from tests.unit.design.conftest import make_config_dir

DESIGNS = Path(__file__).resolve().parents[2] / "designs"
BAD = sorted(DESIGNS.glob("bad/*.yml"))
HEADER = re.compile(r"^# expect-(path|message|line|file): ?(.*)$", re.MULTILINE)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    project = make_config_dir(tmp_path_factory.mktemp("bad") / "config")
    for design in BAD:
        shutil.copy(design, project.designs_dir / design.name)
    for include in (DESIGNS / "design_vars").glob("*.yml"):
        shutil.copy(include, project.design_vars_dir / include.name)
    return project


def test_there_are_at_least_25_bad_designs():
    assert len(BAD) >= 25


@pytest.mark.parametrize("design", BAD, ids=lambda p: p.stem)
def test_bad_design_is_rejected_with_a_precise_message(project, design):
    expect = dict(HEADER.findall(design.read_text()))
    assert "message" in expect, f"{design.name} states no expect-message"
    with pytest.raises(UserError) as caught:
        load_suite(project, design.stem).extend(check_commands=False)
    error = caught.value
    message = str(error)
    assert "\n" not in message
    assert expect["message"] in error.detail
    assert Path(error.file).name == expect.get("file", design.name)
    if "path" in expect:
        assert error.path is not None and error.path.startswith(expect["path"]), message
        assert f": {error.path}: " in f": {message}"
    if "line" in expect:
        assert error.line == int(expect["line"]), message
        assert f"{expect.get('file', design.name)}:{expect['line']}:" in message

"""`doe run` without --cloud: $DOES_CLOUD (doe-suite's default cloud), else the local cloud."""

from __future__ import annotations

from typer.testing import CliRunner

from doe_cli.main import app

DESIGN = """\
one:
  n_repetitions: 1
  host_types:
    small:
      $CMD$: "echo hi"
  base_experiment: {}
"""


def test_run_without_cloud_takes_the_cloud_of_does_cloud(tmp_path, monkeypatch):
    (tmp_path / "designs").mkdir()
    (tmp_path / "designs" / "s.yml").write_text(DESIGN)
    monkeypatch.setenv("DOES_CLOUD", "lab")
    result = CliRunner().invoke(app, ["--config-dir", str(tmp_path), "--results-dir", str(tmp_path / "results"),
                                      "run", "--suite", "s"])
    assert result.exit_code == 2
    [line] = result.stderr.strip().splitlines()
    assert "inventory/lab.yml does not exist" in line

"""status.html of a real local run, looked at in a real headless browser (Debian's chromium)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.run.conftest import Doe, make_config_dir

pytestmark = pytest.mark.tsp

# Run 2 fails with a telling stderr; the ETL draws a figure and writes a table of the others.
SUITE = """
paged:
  n_repetitions: 2
  host_types:
    small:
      $CMD$: >-
        if [ "[% my_run.n %]" = 3 ]; then echo "cannot open model.bin <&>" >&2; exit 7; fi;
        python3 -c 'import json; json.dump({"latency_ms": [% my_run.n %] * 1.5}, open("results/metrics.json", "w"))'
  base_experiment:
    n:
      $FACTOR$: [1, 2, 3]

$ETL$:
  timing:
    experiments: "*"
    extractors:
      JsonExtractor: {}
      IgnoreExtractor:
        file_regex: ["^std(out|err)\\\\.log$"]
    transformers:
      - name: RepAggTransformer
        data_columns: [latency_ms]
    loaders:
      CsvSummaryLoader: {}
      FactorPlotLoader: {y: latency_ms}
"""


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("needs chromium (installed by .ci/run)")
    return found


def browse(page: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                           "--no-first-run", "--user-data-dir=" + str(page.parent / ".chromium"), *extra,
                           page.resolve().as_uri()], capture_output=True, text=True, timeout=120, check=False)


def test_the_status_page_shows_counts_failures_and_etl_figures_in_a_browser(tmp_path, short_tmp):
    doe = Doe(make_config_dir(tmp_path, {"paged": SUITE}), tmp_path / "results", short_tmp / "local")
    ran = doe("run", "--suite", "paged", "--id", "new", check=False)
    assert ran.returncode == 1 and "2 failed" in ran.stderr, ran.stderr  # the failing run 2
    page = Path(doe("status", "--suite", "paged", "--html").stdout.strip())
    assert page.name == "status.html" and page.parent == doe.suite_dir("paged")
    text = page.read_text()
    assert "http://" not in text.replace("http://www.w3.org", "") and "https://" not in text  # no network
    assert 'http-equiv="refresh"' not in text  # the run is over: no reloading

    dom = browse(page, "--dump-dom")
    assert dom.returncode == 0, dom.stderr
    html = dom.stdout
    assert 'data-ready="1"' in html  # the page's script ran to its end
    counts = dict(re.findall(r'data-count="(\w+)">(\d+)<', html))
    assert counts == {"done": "4", "failed": "2", "queued": "0", "pending": "0", "total": "6"}, counts
    failures = html[html.index('id="failures"'):]
    assert "paged run 2 rep 0" in failures and "exit code 7" in failures
    assert "cannot open model.bin &lt;&amp;&gt;" in failures  # the stderr tail, escaped
    assert re.search(r'<img alt="[^"]*latency_ms[^"]*\.png" src="data:image/png;base64,', html)
    assert "<td>n=2</td>" in html  # the job table's factor values

    shot = tmp_path / "status.png"
    done = browse(page, f"--screenshot={shot}", "--window-size=1200,1600")
    assert done.returncode == 0 and shot.read_bytes()[:4] == b"\x89PNG", done.stderr

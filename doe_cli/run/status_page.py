"""`<suite>_<id>/status.html`: one self-contained page (inline CSS, JS and images; no server, no network)
with the suite's progress per experiment, an ETA, a sortable and filterable job table, failures first
with the end of their stderr, the hosts (on AWS with the cost so far and the budget), and each ETL pipeline's tables and figures. While the suite
runs, the page reloads itself.

A StatusPage keeps what never changes once read (a run's factor values, a finished job's record), so
the controller can rewrite the page after every poll at the cost of what changed.
"""

from __future__ import annotations

import base64
import csv
import html
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from doe_cli.clouds.base import CostSoFar, format_usd
from doe_cli.errors import DoeError
from doe_cli.run.state import FAILED, FINISHED, PENDING, QUEUED, ExperimentState
from etl.errors import EtlConfigError
from etl.fileio import DOE_RECORD, write_text_atomic
from etl.layout import JobKey, job_dir
from etl.suite import SUITE_DESIGN, experiment_factors, factor_values, read_design

PAGE = "status.html"
REFRESH_SECONDS = 10
TABLE_ROWS = 8            # first rows of an ETL table shown
MAX_IMAGE_BYTES = 3 << 20  # larger figures are linked, not inlined
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml"}
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class HostInfo:
    name: str
    address: str = ""
    exp: str = ""
    cloud: str = ""
    state: str = ""        # as the controller last saw it; empty when nobody asked
    last_seen: float | None = None


@dataclass
class _Record:
    """What a finished job's fetched records say, per host."""

    wall: float | None
    start: float | None
    end: float | None
    hosts: str


@dataclass
class StatusPage:
    suite_dir: Path
    suite: str
    suite_id: int | str
    _factors: dict[tuple[str, int], str] = field(default_factory=dict)
    _factor_names: dict[str, tuple[str, ...]] | None = None
    # A job's records once it ended (None: none arrived, e.g. a lost job): read once, never again.
    _records: dict[tuple[str, JobKey, int], _Record | None] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return self.suite_dir / PAGE

    def write(self, states: dict[str, ExperimentState], *, running: bool, failed_jobs: dict[str, list[dict]],
              hosts: list[HostInfo] | None = None, notes: list[str] | None = None,
              cost: CostSoFar | None = None) -> Path:
        text = self.render(states, running=running, failed_jobs=failed_jobs, hosts=hosts or [], notes=notes or [],
                           cost=cost)
        write_text_atomic(self.path, text)
        return self.path

    # --- data ----------------------------------------------------------------------------------------
    def _run_factors(self, exp: str, run: int) -> str:
        """The run's factor values (the design's factors, not its constants), as `name=value, ...`."""
        key = (exp, run)
        if key not in self._factors:
            if self._factor_names is None:
                try:
                    self._factor_names = experiment_factors(read_design(self.suite_dir / SUITE_DESIGN))
                except EtlConfigError:
                    self._factor_names = {}
            config = _read_json(self.suite_dir / exp / f"run_{run}" / "rep_0" / "config.json")
            values = factor_values(config, self._factor_names.get(exp, ()))
            self._factors[key] = ", ".join(f"{name}={_short(value)}" for name, value in values.items())
        return self._factors[key]

    def _record(self, exp: str, key: JobKey, attempt: int) -> _Record | None:
        """The fetched records of a finished job (never re-read once found)."""
        cache_key = (exp, key, attempt)
        if cache_key in self._records:
            return self._records[cache_key]
        walls, starts, ends, hosts = [], [], [], []
        for record_file in sorted((self.suite_dir / job_dir(exp, key)).glob(f"*/host_*/{DOE_RECORD}")):
            try:
                record = yaml.load(record_file.read_text(encoding="utf-8"), Loader=_YAML_LOADER) or {}
            except (OSError, yaml.YAMLError):
                continue
            if not isinstance(record, dict):
                continue
            hosts.append(str(record.get("host") or f"{record_file.parent.parent.name}/{record_file.parent.name}"))
            if isinstance(record.get("wall_seconds"), int | float):
                walls.append(float(record["wall_seconds"]))
            starts.append(_timestamp(record.get("start_time")))
            ends.append(_timestamp(record.get("end_time")))
        if not hosts:
            self._records[cache_key] = None
            return None
        found = _Record(max(walls) if walls else None, min((s for s in starts if s), default=None),
                        max((e for e in ends if e), default=None), ", ".join(hosts))
        self._records[cache_key] = found
        return found

    def note_job(self, exp: str, key: JobKey, attempt: int, markers: Iterable[dict]) -> None:
        """A job ended: its hosts' done markers hold what its records say, so they need not be read."""
        markers = list(markers)
        walls = [float(m["wall_seconds"]) for m in markers if isinstance(m.get("wall_seconds"), int | float)]
        starts = [t for t in (_timestamp(m.get("start_time")) for m in markers) if t]
        ends = [t for t in (_timestamp(m.get("end_time")) for m in markers) if t]
        hosts = [str(m.get("host")) for m in markers if m.get("host")]
        self._records[(exp, key, attempt)] = _Record(max(walls) if walls else None, min(starts, default=None),
                                                     max(ends, default=None), ", ".join(hosts))

    # --- page ----------------------------------------------------------------------------------------
    def render(self, states: dict[str, ExperimentState], *, running: bool, failed_jobs: dict[str, list[dict]],
               hosts: list[HostInfo], notes: list[str], cost: CostSoFar | None = None) -> str:
        now = time.time()
        sections = [self._summary(states, running, now), self._adaptive(states), self._failures(failed_jobs),
                    self._jobs(states), _hosts(hosts, now, cost), self._etl()]
        title = f"{self.suite}_{self.suite_id}"
        refresh = f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">' if running else ""
        stamp = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        state = "running" if running else "complete" if all(s.done() for s in states.values()) else "stopped"
        note_html = "".join(f'<p class="note">{html.escape(note)}</p>' for note in notes)
        return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">{refresh}"
                f"<title>{html.escape(title)} - doe</title><style>{_CSS}</style></head><body>"
                f"<h1>{html.escape(title)} <span class=\"state {state}\" id=\"suite-state\">{state}</span></h1>"
                f"<p class=\"muted\">written {stamp}{' - reloads every ' + str(REFRESH_SECONDS) + ' s' if running else ''}"
                f"</p>{note_html}{''.join(sections)}<script>{_JS}</script></body></html>\n")

    def _summary(self, states: dict[str, ExperimentState], running: bool, now: float) -> str:
        rows = []
        for name, state in states.items():
            counts = state.counts()
            total = max(1, len(state.jobs))
            done, failed, queued, pending = counts[FINISHED], counts[FAILED], counts[QUEUED], counts[PENDING]
            bar = "".join(f'<span class="{css}" style="width:{100 * n / total:.2f}%" title="{label}: {n}"></span>'
                          for css, n, label in (("done", done, "done"), ("failed", failed, "failed"),
                                                ("queued", queued, "on hosts"), ("pending", pending, "waiting"))
                          if n)
            eta = self._eta(name, state, now) if running and queued + pending else ""
            rows.append(f'<tr data-exp="{html.escape(name)}"><td>{html.escape(name)}</td>'
                        f'<td><div class="bar">{bar}</div></td>'
                        f'<td class="num" data-count="done">{done}</td><td class="num" data-count="failed">{failed}</td>'
                        f'<td class="num" data-count="queued">{queued}</td><td class="num" data-count="pending">{pending}</td>'
                        f'<td class="num" data-count="total">{len(state.jobs)}</td><td>{html.escape(eta)}</td></tr>')
        return ("<h2>Progress</h2><table class=\"summary\"><thead><tr><th>experiment</th><th>progress</th>"
                "<th>done</th><th>failed</th><th>on hosts</th><th>waiting</th><th>total</th><th>ETA</th></tr></thead>"
                f"<tbody>{''.join(rows)}</tbody></table>")

    def _eta(self, exp: str, state: ExperimentState, now: float) -> str:
        """From the pace so far: finished jobs per second since the first one started."""
        starts, count = [], 0
        for key in state.with_status(FINISHED, FAILED):
            record = self._record(exp, key, state.jobs[key].attempt)
            if record is not None and record.start is not None:
                starts.append(record.start)
                count += 1
        if not count:
            return "after the first jobs"
        elapsed = now - min(starts)
        left = len(state.jobs) - count
        if elapsed <= 0:
            return ""
        return f"about {_duration(left * elapsed / count)}"

    def _adaptive(self, states: dict[str, ExperimentState]) -> str:
        """Per adaptive experiment: each run's reps so far, estimate, confidence interval and status."""
        from doe_cli.run.status import adaptive_heading, adaptive_summary, format_number

        parts = []
        for name in states:
            summary = adaptive_summary(self.suite_dir / name)
            if summary is None:
                continue
            rows = "".join(
                f'<tr data-run="{html.escape(str(run))}"><td>{html.escape(str(run))}</td>'
                f'<td>{html.escape(self._run_factors(name, int(run)))}</td><td class="num">{entry.get("n")}</td>'
                f'<td class="num">{format_number(entry.get("estimate"))}</td>'
                f'<td class="num">[{format_number(entry.get("ci_low"))}, {format_number(entry.get("ci_high"))}]</td>'
                f'<td class="adaptive-status">{html.escape(str(entry.get("status")))}'
                f'{html.escape(" (" + str(entry["error"]) + ")") if entry.get("error") else ""}</td></tr>'
                for run, entry in sorted(summary["runs"].items(), key=lambda item: int(item[0])))
            about = adaptive_heading(summary)
            parts.append(f'<section class="adaptive" data-exp="{html.escape(name)}"><h3>{html.escape(name)}</h3>'
                         f'<p class="muted">{html.escape(about)}</p><table><thead><tr><th>run</th><th>factors</th>'
                         f'<th>reps</th><th>estimate</th><th>CI</th><th>status</th></tr></thead>'
                         f'<tbody>{rows}</tbody></table></section>')
        return "<h2>Adaptive repetitions</h2>" + "".join(parts) if parts else ""

    def _failures(self, failed_jobs: dict[str, list[dict]]) -> str:
        items = []
        for exp, jobs in failed_jobs.items():
            for job in jobs:
                tail = job.get("stderr_tail")
                tail_html = (f"<pre class=\"stderr\">{html.escape(chr(10).join(tail))}</pre>" if tail
                             else "<p class=\"muted\">stderr.log: " + ("empty" if tail == [] else "not fetched") + "</p>")
                folder = f"<p class=\"muted\">{html.escape(job['folder'])}</p>" if job.get("folder") else ""
                items.append(f"<li class=\"failure\"><b>{html.escape(exp)} run {job['run']} rep {job['rep']}</b>"
                             f" exit code {html.escape(str(job.get('exit_code')))}{folder}{tail_html}</li>")
        if not items:
            return ""
        return f"<h2>Failures</h2><ul class=\"failures\" id=\"failures\">{''.join(items)}</ul>"

    def _jobs(self, states: dict[str, ExperimentState]) -> str:
        rows = []
        for exp, state in states.items():
            for key, record in state.jobs.items():
                fetched = self._record(exp, key, record.attempt) if record.status in (FINISHED, FAILED) else None
                wall = f"{fetched.wall:.3f}" if fetched and fetched.wall is not None else ""
                label = {FINISHED: "done", FAILED: "failed", QUEUED: "on hosts", PENDING: "waiting"}[record.status]
                rows.append(
                    f'<tr class="{record.status}"><td>{html.escape(exp)}</td><td class="num">{key[0]}</td>'
                    f'<td class="num">{key[1]}</td><td>{html.escape(self._run_factors(exp, key[0]))}</td>'
                    f'<td>{html.escape(fetched.hosts if fetched else "")}</td><td>{label}</td>'
                    f'<td class="num">{wall}</td><td class="num">'
                    f'{"" if record.exit_code is None else record.exit_code}</td>'
                    f'<td class="num">{record.attempt}</td></tr>')
        head = "".join(f'<th data-sort="{kind}">{name}</th>' for name, kind in (
            ("experiment", "text"), ("run", "num"), ("rep", "num"), ("factors", "text"), ("host", "text"),
            ("state", "text"), ("wall s", "num"), ("exit", "num"), ("attempt", "num")))
        return ("<h2>Jobs</h2><input id=\"filter\" type=\"search\" placeholder=\"filter rows (any text)\">"
                f"<table class=\"jobs\" id=\"jobs\"><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")

    def _etl(self) -> str:
        root = self.suite_dir / "etl_results"
        if not root.is_dir():
            return ""
        parts = []
        error_log = self.suite_dir / "ETL_ERROR.log"
        if error_log.is_file():
            parts.append(f"<pre class=\"stderr\">{html.escape(error_log.read_text(errors='replace'))}</pre>")
        for pipeline in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            items = []
            for path in sorted(p for p in pipeline.rglob("*") if p.is_file() and not p.name.startswith(".")):
                items.append(_etl_output(path, pipeline))
            parts.append(f"<section class=\"pipeline\"><h3>{html.escape(pipeline.name)}</h3>{''.join(items)}</section>")
        return "<h2>ETL</h2>" + "".join(parts) if parts else ""


def _hosts(hosts: list[HostInfo], now: float, cost: CostSoFar | None = None) -> str:
    if not hosts and cost is None:
        return ""
    cost_html = _cost(cost) if cost is not None else ""
    if not hosts:
        return f"<h2>Hosts</h2>{cost_html}"
    rows = "".join(
        f"<tr><td>{html.escape(h.name)}</td><td>{html.escape(h.address)}</td><td>{html.escape(h.exp)}</td>"
        f"<td>{html.escape(h.cloud)}</td><td>{html.escape(h.state)}</td><td>{_duration(now - h.last_seen) + ' ago' if h.last_seen else ''}</td></tr>"
        for h in hosts)
    return (f"<h2>Hosts</h2>{cost_html}<table class=\"hosts\"><thead><tr><th>host</th><th>address</th><th>experiment</th>"
            f"<th>cloud</th><th>state</th><th>last seen</th></tr></thead><tbody>{rows}</tbody></table>")


def _cost(cost: CostSoFar) -> str:
    """The cost so far and the budget (the numbers also as data attributes, for scripts and tests)."""
    budget = (f" of the budget {format_usd(cost.budget_usd)} ({100 * cost.budget_fraction:.0f}%)"
              if cost.budget_fraction is not None else " (no budget set: aws_budget_usd)")
    unpriced = (f"; not counted: {', '.join(cost.unpriced)} (no price in aws_price_usd_per_hour)"
                if cost.unpriced else "")
    return (f'<p class="cost" id="cost" data-usd="{cost.usd:.4f}" data-budget-usd="{cost.budget_usd:.4f}">'
            f"cost so far: <b>{format_usd(cost.usd)}</b>{budget}, {cost.instances} instance(s), at least a minute "
            f"billed each{html.escape(unpriced)}</p>")


def _etl_output(path: Path, pipeline: Path) -> str:
    name = html.escape(str(path.relative_to(pipeline)))
    suffix = path.suffix.lower()
    if suffix in IMAGE_TYPES and path.stat().st_size <= MAX_IMAGE_BYTES:
        data = base64.b64encode(path.read_bytes()).decode()
        return (f"<figure><img alt=\"{name}\" src=\"data:{IMAGE_TYPES[suffix]};base64,{data}\">"
                f"<figcaption>{name}</figcaption></figure>")
    if suffix == ".csv":
        try:
            with open(path, newline="", encoding="utf-8", errors="replace") as handle:
                rows = [row for _, row in zip(range(TABLE_ROWS + 1), csv.reader(handle), strict=False)]
        except OSError:
            rows = []
        if rows:
            head = "".join(f"<th>{html.escape(cell)}</th>" for cell in rows[0])
            body = "".join("<tr>" + "".join(_cell(cell) for cell in row) + "</tr>" for row in rows[1:])
            return (f"<div class=\"etl-table\"><p>{name}</p><table><thead><tr>{head}</tr></thead>"
                    f"<tbody>{body}</tbody></table></div>")
    return f"<p class=\"muted\">{name}</p>"


def _cell(text: str, limit: int = 60) -> str:
    if len(text) <= limit:
        return f"<td>{html.escape(text)}</td>"
    return f'<td title="{html.escape(text)}">{html.escape(text[:limit - 3])}...</td>'


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _short(value: Any, limit: int = 40) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _timestamp(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}
.muted{color:#777;font-size:.85em}.note{background:#fff6d5;padding:.4em .6em}
.state{font-size:.7em;padding:.15em .5em;border-radius:.3em;color:#fff;vertical-align:middle}
.state.running{background:#2a7ae2}.state.complete{background:#2e9d4f}.state.stopped{background:#999}
table{border-collapse:collapse;font-size:.85em}td,th{padding:.2em .6em;border-bottom:1px solid #eee;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}th[data-sort]{cursor:pointer;user-select:none}
.bar{width:18em;height:.9em;background:#eee;display:flex;border-radius:.2em;overflow:hidden}
.bar span{display:block;height:100%}.bar .done{background:#2e9d4f}.bar .failed{background:#d64545}
.cost{margin:.3em 0 .6em}.bar .queued{background:#2a7ae2}.bar .pending{background:#ccc}
tr.failed td{background:#fdeaea}pre.stderr{background:#f6f6f6;padding:.5em;overflow-x:auto;font-size:.8em}
#filter{margin:.3em 0 .6em;padding:.3em;width:20em}figure{display:inline-block;margin:.5em}
figure img{max-width:42em;border:1px solid #ddd}.failures{padding-left:1.2em}
"""

_JS = """
(function(){var t=document.getElementById('jobs');if(!t)return;var b=t.tBodies[0];
document.getElementById('filter').addEventListener('input',function(e){var q=e.target.value.toLowerCase();
for(var r of b.rows){r.style.display=r.textContent.toLowerCase().indexOf(q)<0?'none':'';}});
t.querySelectorAll('th[data-sort]').forEach(function(h,i){var asc=true;h.addEventListener('click',function(){
var num=h.dataset.sort==='num';var rows=Array.from(b.rows);rows.sort(function(x,y){var a=x.cells[i].textContent,
c=y.cells[i].textContent;var d=num?(parseFloat(a)||0)-(parseFloat(c)||0):a.localeCompare(c);return asc?d:-d;});
asc=!asc;rows.forEach(function(r){b.appendChild(r);});});});document.body.dataset.ready='1';})();
"""


def write_suite_page(project, suite: str, id_option: str) -> Path:
    """`doe status --html`: the page of a suite run from its files (no host is asked)."""
    from doe_cli.clouds.aws.cost import stored_cost
    from doe_cli.run.status import controller_running, failed_jobs, open_suite_run

    suite_id, suite_dir, states = open_suite_run(project, suite, id_option)
    page = StatusPage(suite_dir, suite, suite_id)
    return page.write(states, running=controller_running(suite_dir), failed_jobs=failed_jobs(suite_dir, states),
                      hosts=stored_hosts(suite_dir), cost=stored_cost(suite_dir, time.time()))


def stored_hosts(suite_dir: Path) -> list[HostInfo]:
    """The hosts of the inventory doe stored for the run, without their live state."""
    from doe_cli.clouds.inventory import read_suite_inventory_hosts, stored_cloud

    cloud = stored_cloud(suite_dir)
    if cloud is None:
        return []
    return [HostInfo(name, host_address(host_vars), str(host_vars.get("doe_exp") or ""), cloud=cloud)
            for name, host_vars in read_suite_inventory_hosts(suite_dir, cloud).items()]


def host_address(host_vars: dict[str, Any]) -> str:
    return str(host_vars.get("ansible_host") or host_vars.get("public_dns_name") or "")


def open_in_browser(page: Path) -> None:
    import webbrowser

    if not webbrowser.open(page.resolve().as_uri()):
        raise DoeError(f"no browser to open {page} here; open the file yourself")

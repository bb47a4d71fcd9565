"""Progress display: one line per experiment, e.g. "exp1: 7/12 jobs, 1 running, 0 failed"."""

from __future__ import annotations

import time
from typing import Self

from rich.console import Console
from rich.live import Live
from rich.text import Text

from doe_cli.run.state import FAILED, FINISHED, PENDING, QUEUED


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class Progress:
    """On a terminal a live block; otherwise a line whenever an experiment's counts change."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.start = time.monotonic()
        self.live: Live | None = None
        self.last_lines: dict[str, str] = {}
        self.phase = ""
        self.experiments: dict[str, tuple[dict[str, int], int]] = {}

    def __enter__(self) -> Self:
        if self.console.is_terminal:
            self.live = Live(console=self.console, transient=False, auto_refresh=False)
            self.live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.live is not None:
            self.live.__exit__(*exc)

    def line(self, name: str, counts: dict[str, int], running: int) -> str:
        total = sum(counts.values())
        done = counts[FINISHED] + counts[FAILED]
        text = (f"experiment {name}: {done}/{total} jobs, {running} running, {counts[FAILED]} failed, "
                f"{counts[PENDING] + counts[QUEUED] - running} waiting")
        return text

    def event(self, event: dict) -> None:
        """Ansible events (from the adapter): the live display shows which task runs on the hosts."""
        if self.live is not None and event.get("event") == "playbook_on_task_start":
            self.phase = str(event.get("event_data", {}).get("task", ""))
            self.update(self.experiments)

    def update(self, experiments: dict[str, tuple[dict[str, int], int]]) -> None:
        self.experiments = experiments
        elapsed = time.monotonic() - self.start
        lines = []
        for name, (counts, running) in experiments.items():
            text = self.line(name, counts, running)
            done = counts[FINISHED] + counts[FAILED]
            total = sum(counts.values())
            if done and done < total:
                rate = done / max(elapsed, 1e-6)
                text += f", ETA {_duration((total - done) / rate)}"
            lines.append((name, text))
        if self.live is not None:
            phase = f" - {self.phase}" if self.phase else ""
            block = Text("\n".join(text for _, text in lines) + f"\nelapsed {_duration(elapsed)}{phase}")
            self.live.update(block, refresh=True)
            return
        for name, text in lines:
            key = text.split(", ETA")[0]
            if self.last_lines.get(name) != key:
                self.last_lines[name] = key
                self.console.print(f"[{_duration(elapsed)}] {text}", markup=False, highlight=False)

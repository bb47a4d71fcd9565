"""What the controller knows of one host's queue between polls, and the poll request built from it.

A host's wrappers append every finished job to a journal; a poll sends the byte offset read so far
(the cursor) and gets the jobs finished since, at most MAX_REPORT of them: a poll costs what changed,
not what the suite holds. Jobs are named in a request only where the journal cannot tell: the last
jobs of a host (so the queue can shut down once they are all done), multi-host jobs, jobs whose
results did not arrive, and, once the host's queue is idle, jobs it never reported (lost, or never
enqueued after a crash). The controller keeps at most ENQUEUE_WINDOW jobs of a host queued at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from etl.layout import JobKey

# Jobs queued on one host at a time; more are enqueued when half of them are done. Bounds the host's
# queue listing, the requests and the reports, whatever the size of the suite.
ENQUEUE_WINDOW = 2000
# Journal entries one poll reports, and jobs one request names: a report stays far below the size at
# which ansible-runner drops a task result, and a request far below the command line limit.
MAX_REPORT = 500
CHECK_PAGE = 500
# A host with at most this many jobs queued is asked about each of them by name.
NAME_ALL_BELOW = 64
# Polls in a row after which a finished job whose results do not arrive stops the run.
MAX_MISSING_POLLS = 3


@dataclass
class HostFeed:
    cursor: int = 0
    outstanding: set[JobKey] = field(default_factory=set)   # queued here, not reported done by this host
    to_check: set[JobKey] = field(default_factory=set)      # to ask about by name
    missing: dict[JobKey, int] = field(default_factory=dict)  # reported done, results not arrived: polls
    more: bool = False                                      # the journal holds more than the last report

    def named_jobs(self, outstanding: set[JobKey], final: bool) -> tuple[list[JobKey], bool]:
        """The jobs a poll names (outstanding: with those about to be queued), and whether they are all."""
        if len(outstanding) <= NAME_ALL_BELOW or (final and len(outstanding) <= CHECK_PAGE):
            return sorted(outstanding), True
        return sorted(self.to_check)[:CHECK_PAGE], False

    def done(self, key: JobKey) -> None:
        self.outstanding.discard(key)
        self.to_check.discard(key)
        self.missing.pop(key, None)

    def not_arrived(self, key: JobKey) -> int:
        """A job reported done whose results are not in the results folder: asked about again."""
        self.to_check.add(key)
        self.missing[key] = self.missing.get(key, 0) + 1
        return self.missing[key]

    def after_report(self, idle: bool, more: bool, cursor: int) -> None:
        """An idle queue whose journal was read to its end has reported every job it ran: the jobs still
        outstanding were lost or never reached it, so they are asked about by name."""
        self.cursor, self.more = cursor, more
        if idle and not more:
            self.to_check |= self.outstanding

"""Running a suite: suite ids, host assignment, durable job state, the controller loop that drives
the enqueue/poll playbooks, fetch safety, provenance and status. The hosts come from doe_cli.clouds."""

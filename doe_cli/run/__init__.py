"""Running a suite: suite ids, host assignment, the local cloud, durable job state, the controller
loop that drives the enqueue/poll playbooks, fetch safety, provenance and status."""

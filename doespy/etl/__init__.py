"""doe-suite's `doespy.etl`."""

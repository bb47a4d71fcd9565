"""doe-suite's `doespy.design`."""

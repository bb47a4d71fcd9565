"""doe-suite's `doespy.etl.steps`: the step base classes and built-in steps."""

"""doe-suite's `doespy.etl.steps.colcross.subplots`: the chart types."""

"""doe-suite's `doespy.etl.steps.colcross`: the ColumnCrossPlotLoader, backed by doe's
`etl.steps.colcross`."""

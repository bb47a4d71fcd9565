"""doe-suite's `doespy.etl.steps.colcross.colcross`: the public names of doe's
`etl.steps.colcross.colcross`."""

from etl.steps.colcross.colcross import *

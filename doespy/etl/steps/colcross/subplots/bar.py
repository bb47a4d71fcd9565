"""doe-suite's `doespy.etl.steps.colcross.subplots.bar`: the public names of doe's
`etl.steps.colcross.subplots.bar`."""

from etl.steps.colcross.subplots.bar import *

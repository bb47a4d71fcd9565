"""doe-suite's `doespy.etl.steps.colcross.hooks`: the public names of doe's
`etl.steps.colcross.hooks`."""

from etl.steps.colcross.hooks import *

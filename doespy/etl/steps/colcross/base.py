"""doe-suite's `doespy.etl.steps.colcross.base`: the public names of doe's
`etl.steps.colcross.base`."""

from etl.steps.colcross.base import *

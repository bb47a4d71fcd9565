"""doe-suite's `doespy.etl.steps.colcross.components`: the public names of doe's
`etl.steps.colcross.components`."""

from etl.steps.colcross.components import *

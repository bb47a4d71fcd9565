"""doe-suite's `doespy.etl.steps.colcross.subplots.bar_hooks`: the public names of doe's
`etl.steps.colcross.subplots.bar_hooks`."""

from etl.steps.colcross.subplots.bar_hooks import *

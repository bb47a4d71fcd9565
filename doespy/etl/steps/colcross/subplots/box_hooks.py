"""doe-suite's `doespy.etl.steps.colcross.subplots.box_hooks`: the public names of doe's
`etl.steps.colcross.subplots.box_hooks`."""

from etl.steps.colcross.subplots.box_hooks import *

"""doe-suite's `doespy.etl.steps.colcross.subplots.box`: the public names of doe's
`etl.steps.colcross.subplots.box`."""

from etl.steps.colcross.subplots.box import *

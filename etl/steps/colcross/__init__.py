"""ColumnCrossPlotLoader: doe-suite's declarative figures (figures × subplot grid × groups × bars × parts,
each level chosen by columns of the frame), with the same configuration language and hooks."""

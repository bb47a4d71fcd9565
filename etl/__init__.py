"""doe's ETL: extract job results into rows, transform them with pandas, load them as tables and plots.

This package only reads a results tree and its design; it never imports doe_cli.
"""

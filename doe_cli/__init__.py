"""doe: run benchmark experiment suites from one YAML design."""

__version__ = "0.1.0"

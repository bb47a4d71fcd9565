"""Typer command groups; each command parses options and delegates to a service module."""

"""Clouds that provision hosts for a suite. Only AWS needs services of its own; see aws_*.py."""

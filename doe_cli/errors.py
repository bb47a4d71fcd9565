"""Errors that reach the user as one line, never as a traceback."""

from __future__ import annotations


class DoeError(Exception):
    """An operational failure (a host is down, a playbook failed): exit code 1."""

    exit_code = 1


class UserError(DoeError):
    """Bad input from the user (design, options, config files): exit code 2, nothing created.

    The message names the file, the key (as a YAML path) and what was expected.
    """

    exit_code = 2

    def __init__(self, message: str, *, file: str | None = None, path: str | None = None,
                 line: int | None = None) -> None:
        self.file = file
        self.path = path
        self.line = line
        self.detail = message
        super().__init__(self.format())

    def format(self) -> str:
        where = ""
        if self.file:
            where = str(self.file)
            if self.line is not None:
                where += f":{self.line}"
        if self.path:
            where = f"{where}: {self.path}" if where else self.path
        return f"{where}: {self.detail}" if where else self.detail

"""Exceptions that map onto the CLI's exit codes (README, "Use": exit codes)."""
from __future__ import annotations



class UsageError(Exception):
    """Bad input or usage: a case file, a key, an option. Exit code 2."""


class CaseError(UsageError):
    """A case file that cannot be loaded; the message names the file and key."""

    def __init__(self, path: str, key: str | None, problem: str):
        where = f"{path}: {key}" if key else path
        super().__init__(f"{where}: {problem}")

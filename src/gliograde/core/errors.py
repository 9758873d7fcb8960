"""Exceptions raised for problems a user can fix.

The CLI prints these as one line, without a traceback. Anything else is a bug in gliograde.
"""


class GliogradeError(Exception):
    """A problem with the user's input or environment, explained in one line."""


class DataError(GliogradeError):
    """Input data (folders, NIfTI files, label CSVs) cannot be used as given."""


class UnsafeFileError(GliogradeError):
    """A model file would run code when loaded, or is not a gliograde model."""


class UsageError(GliogradeError):
    """The command was called wrongly: a missing path, an option out of range (exit code 2)."""

"""One exception type for user mistakes, printed by the CLI as a single line."""


class XJepaError(ValueError):
    """Bad input from the user (file, key or value); the message names it and what to do."""


class DataError(XJepaError):
    """A dataset file or folder is missing, corrupt or inconsistent."""

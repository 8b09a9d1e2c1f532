"""User-facing errors: the CLI prints ``str(err)`` as one line and exits with status 2."""


class BenchError(Exception):
    """Bad input: the message says what is wrong, where, and how to fix it (one line)."""

    exit_code = 2

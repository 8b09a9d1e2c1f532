"""The ``bench`` console script: shows a start-up status line on a terminal from the first moment, while torch and
the registries are imported (seconds on a loaded laptop), then hands over to :func:`bench.cli.entry`. Only the
standard library is imported before the status line is up."""

from __future__ import annotations


def entry() -> None:
    from bench.progress import status_line

    status_line.start("starting: importing torch and the registered models and datasets")
    try:
        from bench.cli import entry as cli_entry
    except BaseException:  # a broken install: its traceback must not start on the status line
        status_line.stop()
        raise
    cli_entry()

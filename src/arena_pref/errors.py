"""Errors a user can fix (bad input files, params, downloads) and the entry point every stage script uses.

A stage that stops on such an error prints ONE line, `error: <file>[, row N][, column 'c']: <what>`, to
stderr and exits with EXIT_INPUT_ERROR, without a traceback: the traceback of a DataError only shows
where the reader noticed the problem, which the message already names. Set ARENA_PREF_DEBUG=1 to get
the traceback anyway. Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Not 1: Python exits with 1 on an uncaught exception (a bug), so a script or test can tell them apart.
EXIT_INPUT_ERROR = 2
DEBUG_ENV = "ARENA_PREF_DEBUG"


class InputError(ValueError):
    """Something the user gave (a file, a URL, a parameter) that the pipeline cannot use as it is.
    The message says what is wrong and, where it can, what to do."""


class DataError(InputError):
    """Input that cannot be read without losing or inventing data."""

    def __init__(self, file: str | Path, message: str, row: int | None = None, column: str | None = None):
        where = str(file)
        if row is not None:
            where += f", row {row}"
        if column is not None:
            where += f", column '{column}'"
        super().__init__(f"{where}: {message}")
        self.file, self.row, self.column, self.reason = str(file), row, column, message


def debug_enabled() -> bool:
    return os.environ.get(DEBUG_ENV, "").strip() not in ("", "0", "false", "no")


def run_stage(main: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a stage's `main(*args, **kwargs)`; an InputError ends the process with one line on stderr
    and exit code EXIT_INPUT_ERROR (re-raised with its traceback when ARENA_PREF_DEBUG is set)."""
    try:
        return main(*args, **kwargs)
    except InputError as err:
        if debug_enabled():
            raise
        # One physical line: a message quoting a cell may hold a newline.
        message = " ".join(str(err).splitlines())
        print(f"error: {message}", file=sys.stderr, flush=True)
        raise SystemExit(EXIT_INPUT_ERROR) from None

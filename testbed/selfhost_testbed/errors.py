"""The one exception of the test bed."""
from __future__ import annotations


class TestbedError(Exception):
    """A step failed.  `logfile`, when set, is the log whose tail explains it; the main thread prints that
    tail when it reports the error (cli.main), so a worker thread only has to raise."""

    __test__ = False  # not a test case, whatever a test runner thinks of the name

    def __init__(self, message: str, logfile: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.logfile = logfile

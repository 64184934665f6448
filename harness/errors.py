"""The one exception type users see; `cli.py` turns it into a one-line message and an exit code."""


class FerbenchError(Exception):
    """A problem the user can fix: bad input, missing data, unreachable upstream.

    `str(err)` is a single line naming the file, key or URL at fault; `exit_code`
    is what the CLI exits with (2 for invalid input, 1 for failures of work).
    """

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code

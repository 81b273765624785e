"""The one exception type that reaches a user as a single line and exit status 2."""


class HarnessError(Exception):
    """Bad input or an unmet precondition, explained in one line.

    The CLI prints `harness: <message>` on stderr and exits with status 2; nothing is written.
    Anything else that escapes is a bug and keeps its traceback.
    """

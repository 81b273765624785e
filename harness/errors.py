"""The one exception type that reaches a user as a single line and exit status 2."""

import re

# Control characters (newlines, terminal escapes) that a message may quote from untrusted input
# (a model string, a record's field): shown escaped, so the message stays one inert line.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


class HarnessError(Exception):
    """Bad input or an unmet precondition, explained in one line.

    The CLI prints `harness: <message>` on stderr and exits with status 2; nothing is written.
    Anything else that escapes is a bug and keeps its traceback.
    """

    def __str__(self) -> str:
        return _CONTROL.sub(lambda m: repr(m[0])[1:-1], super().__str__())

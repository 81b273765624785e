"""Strict formats for the strings a run record carries that become file names, links or lookups.

Records are untrusted input (people pass them around and publish them): every string that a
reader turns into a path or a URL is checked on read against one of these, so none can climb out
of its folder (`../x`), name a file elsewhere (`/etc/passwd`) or become a link scheme
(`javascript:`).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import AfterValidator, StringConstraints

IDENTITY_PATTERN = r"^[0-9a-f]{64}$"
NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.()\-]{0,199}$"
SAMPLES_FILE_PATTERN = r"^samples/[0-9a-f]{12}/[A-Za-z0-9_][A-Za-z0-9_.()\-]{0,199}\.jsonl$"

Identity = Annotated[str, StringConstraints(pattern=IDENTITY_PATTERN)]
"""A variant's identity: sha256 (64 lowercase hex characters) of its intervention record."""
SafeName = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
"""A task name or run id: letters, digits, `_`, `.`, `-`, `(`, `)` (five of lm-eval's task names have
parentheses), not starting with `.` or `-`: a file name that cannot leave its folder, nor be read as
an option or a URL scheme."""
Sha256 = Annotated[str, StringConstraints(pattern=IDENTITY_PATTERN)]
"""A sha256 digest (64 lowercase hex characters)."""
SamplesFile = Annotated[str, StringConstraints(pattern=SAMPLES_FILE_PATTERN)]
"""A sample log, relative to its run folder: `samples/<identity[:12]>/<task>.jsonl`."""


def _iso_timestamp(value: str) -> str:
    dt.datetime.fromisoformat(value)  # ValueError names what is wrong
    return value


Timestamp = Annotated[str, AfterValidator(_iso_timestamp)]
"""An ISO 8601 date and time (readers parse it: the export's timestamps)."""

"""What every toxicity scorer is: an identity to record and a batch scoring function."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class ScorerIdentity:
    """Enough to tell whether two toxicity figures came from the same scorer."""

    name: str  # registry name, e.g. "jigsaw-bilstm"
    version: str  # the package that defines the scorer, pinned, e.g. "toxic-comment-classifier==0.3.0"
    weights_sha256: str  # combined_sha256 of the weight files loaded


class Scorer(Protocol):
    identity: ScorerIdentity

    def score(self, texts: Sequence[str]) -> list[float]:
        """The probability that each text is toxic, in [0, 1]; "" is a text like any other."""
        ...


def combined_sha256(digests: Mapping[str, str]) -> str:
    """The one file's sha256, or the sha256 of `sha256sum`-style lines over several, sorted by name.

    Names are paths inside the package, so the digest does not depend on where it is installed.
    """
    if len(digests) == 1:
        return next(iter(digests.values()))
    lines = "".join(f"{digest}  {name}\n" for name, digest in sorted(digests.items()))
    return hashlib.sha256(lines.encode("utf-8")).hexdigest()

"""Defaults of the paired comparison behind `harness compare`, `report` and `leaderboard build`
(its seed is harness.spec.DEFAULT_SEED), and the bounds of its settings. Light, so the CLI reads
them when it builds its parser."""

from harness.errors import HarnessError
from harness.spec._options import MAX_SEED

DEFAULT_RESAMPLES = 1000
"""Paired bootstrap draws per task."""
DEFAULT_CONFIDENCE = 0.95
"""Coverage of the percentile intervals."""
MAX_RESAMPLES = 100_000
"""More draws than any interval's precision needs; each is a pass over every paired document."""


def check_bootstrap(seed: int, resamples: int, confidence: float) -> None:
    """The paired bootstrap's settings, refused in one line before any sample log is read."""
    if not 1 <= resamples <= MAX_RESAMPLES:
        raise HarnessError(f"--resamples must be between 1 and {MAX_RESAMPLES:,}, got {resamples:,}")
    if not 0 < confidence < 1:
        raise HarnessError(f"--confidence must be between 0 and 1, got {confidence}")
    if not 0 <= seed <= MAX_SEED:
        raise HarnessError(f"--seed must be between 0 and {MAX_SEED}, got {seed}")

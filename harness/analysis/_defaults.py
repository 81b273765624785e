"""Defaults of the paired comparison behind `harness compare`, `report` and `leaderboard build`
(its seed is harness.spec.DEFAULT_SEED). Light, so the CLI reads them when it builds its parser."""

DEFAULT_RESAMPLES = 1000
"""Paired bootstrap draws per task."""
DEFAULT_CONFIDENCE = 0.95
"""Coverage of the percentile intervals."""

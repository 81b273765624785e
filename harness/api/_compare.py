"""`harness.compare`: `harness compare` as a function."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from harness._util.environ import caller_process_kept
from harness.analysis._compare import Summary, summarize
from harness.analysis._defaults import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES
from harness.errors import HarnessError
from harness.records._runs import Run
from harness.spec._options import DEFAULT_SEED


def compare(
    *runs: Run | str | os.PathLike[str],
    seed: int = DEFAULT_SEED,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    pareto: Sequence[str] = (),
) -> Summary:
    """Each variant of `runs` (runs from harness.evaluate or load_run, or run folders) against its
    base, which may be in another of the runs: paired differences with bootstrap intervals,
    McNemar's test and flips per task and metric (`.comparison`), sweeps as curves (`.sweeps`),
    and a Pareto front for each `pareto` "AXIS_A,AXIS_B" (`.fronts`). `.table()` is what `harness
    compare` prints, `.to_json()` its --output json."""
    if not runs:
        raise HarnessError("harness.compare: give at least one run")
    if isinstance(pareto, str):
        raise HarnessError("harness.compare: pareto is a list of 'AXIS_A,AXIS_B' texts")
    with caller_process_kept():
        return summarize([run if isinstance(run, Run) else Path(run) for run in runs], seed, resamples, confidence, pareto)

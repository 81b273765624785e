"""Curves: the axes of `--pareto` on a committed run whose metric names hold commas."""

from __future__ import annotations

import pytest

from harness.analysis._curves import parse_pareto, sweeps
from harness.errors import HarnessError
from harness.records._runs import load_run
from tests.helpers import REPO


def test_pareto_axes_resolve_with_commas_in_metric_names():
    run = load_run(REPO / "results" / "20261128T044743Z-27e4ee26")
    a, b = parse_pareto(run, "mgsm_direct/exact_match,flexible-extract,xcopa/acc")
    assert (a.task, a.metric, b.task, b.metric) == ("mgsm_direct", "exact_match,flexible-extract", "xcopa", "acc")
    with pytest.raises(HarnessError, match="no metric 'xcopa/accc'"):
        parse_pareto(run, "xcopa/accc,cost/weight_mb")
    assert sweeps(run) == []

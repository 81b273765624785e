"""Displays that do not overstate: float rounding is not a difference, proportion intervals stay
in [0, 1], spreads are neither better nor worse, fronts only along axes that vary."""

from __future__ import annotations

import numpy as np
import pytest

from harness.analysis import _stats
from harness.analysis._curves import CurvePoint
from harness.analysis._plots import _error_bars
from harness.analysis._report import _interval
from tests.helpers import REPO


class _Draws:
    """An rng whose bootstrap draws are given: each row a resample of document indices."""

    def __init__(self, rows: list[list[int]]) -> None:
        self.rows = np.array(rows)

    def integers(self, low: int, high: int, size: tuple[int, int]) -> np.ndarray:
        return np.resize(self.rows, size)


def test_a_difference_that_is_float_rounding_is_zero_so_the_interval_includes_zero():
    # The variant holds the base's three values in another order: every draw below takes each
    # document once, so each difference is 0, but (0.1 + 0.2) + 0.3 != (0.2 + 0.3) + 0.1 in floats.
    base, variant = np.array([0.1, 0.2, 0.3]), np.array([0.2, 0.3, 0.1])
    assert variant.mean() - base.mean() != 0.0
    interval = _stats.bootstrap_interval(base, variant, _stats.aggregate_for("acc"), 100, _Draws([[0, 1, 2]]), 0.95)  # type: ignore[arg-type]
    assert interval == (0.0, 0.0)


def test_a_real_difference_keeps_its_interval():
    base, variant = np.array([0.1, 0.2, 0.3]), np.array([0.1, 0.2, 0.0])
    low, high = _stats.bootstrap_interval(base, variant, _stats.aggregate_for("acc"), 100, _Draws([[0, 1, 2], [2, 2, 2]]), 0.95)  # type: ignore[arg-type]
    assert low == pytest.approx(-0.3) and high == pytest.approx(-0.1)


def test_wilson_interval_matches_the_textbook_and_stays_in_the_unit_interval():
    assert _stats.wilson_interval(0.1, 100, 0.95) == pytest.approx((0.0552, 0.1744), abs=5e-5)
    assert _stats.wilson_interval(0.0, 20, 0.95) == pytest.approx((0.0, 0.1611), abs=5e-5)
    assert _stats.wilson_interval(1.0, 20, 0.95)[1] == 1.0


def test_the_report_interval_of_an_accuracy_near_zero_does_not_run_below_zero():
    # acc 0.009 over 1000 documents with lm-eval's stderr 0.003: value - 1.96 * stderr would be 0.0031,
    # but at acc 0.001 the normal interval crosses 0.
    shown = _interval("acc", 0.001, 0.001, 1000, 0.95, 1.96)
    low, high = (float(x) for x in shown.strip("[]").split(","))
    assert 0.0 <= low < 0.001 < high <= 1.0
    assert _interval("word_perplexity", 29.05, 1.2, 62, 0.95, 1.96) == "[26.6980, 31.4020]"


def test_error_bars_of_a_proportion_stop_at_zero_and_one():
    points = [CurvePoint("a", 1.0, 0.01, 0.05), CurvePoint("b", 2.0, 0.99, 0.05), CurvePoint("c", 3.0, 0.5, 0.05)]
    assert _error_bars("acc", points) == [[0.01, 0.05, 0.05], [0.05, pytest.approx(0.01), 0.05]]
    assert _error_bars("word_perplexity", points) == [[0.05, 0.05, 0.05], [0.05, 0.05, 0.05]]


def test_a_spread_is_neither_better_nor_worse():
    assert _stats.direction("expected_max_toxicity_std", False) is None
    assert _stats.direction("expected_max_toxicity", False) is False
    assert _stats.direction("exact_match,flexible-extract", True) is True


def test_no_front_is_drawn_along_an_axis_on_which_every_point_sits_at_one_value():
    from harness.analysis._curves import fronts, parse_pareto
    from harness.records import load_run

    # DoLa and contrast change no weight: every variant of the run weighs what its base weighs.
    run = load_run(REPO / "results" / "20261128T201617Z-072ffd82")
    assert fronts(run, *parse_pareto(run, "cost/weight_mb,truthfulqa_mc1/acc")) == []
    assert fronts(run, *parse_pareto(run, "cost/gflops_per_token,truthfulqa_mc1/acc")) != []

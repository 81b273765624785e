"""`profanity-check`: alt-profanity-check's calibrated linear SVM over TF-IDF, via its predict_prob."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Sequence
from pathlib import Path

from harness.errors import HarnessError
from harness.tasks.scorers._base import ScorerIdentity, combined_sha256
from harness.tasks.scorers._package_files import PinnedPackage

NAME = "profanity-check"
_MODEL = "profanity_check/data/model.joblib"
_VECTORIZER = "profanity_check/data/vectorizer.joblib"
# The package unpickles these joblib files when imported: they are its own files, not user input,
# and they are checked against these digests before the import.
PACKAGE = PinnedPackage(
    distribution="alt-profanity-check",
    version="1.9.1",
    files={
        _MODEL: "aeafc04849d4d93db4721cf30a86ebf22085595294b8a07d51918e7fa98f538b",
        _VECTORIZER: "19c5200dc6a41f026e0558e2f164f5fe8d8f58e502b46b37e4385037fcfa4831",
    },
)
_BATCH = 4096
_PredictProb = Callable[[list[str]], Sequence[float]]


class ProfanityCheck:
    def __init__(self, identity: ScorerIdentity, predict_prob: _PredictProb) -> None:
        self.identity = identity
        self._predict_prob = predict_prob

    def score(self, texts: Sequence[str]) -> list[float]:
        scores: list[float] = []
        for start in range(0, len(texts), _BATCH):
            scores.extend(float(p) for p in self._predict_prob(list(texts[start : start + _BATCH])))
        return scores


def load() -> ProfanityCheck:
    checked = PACKAGE.locate(NAME)[_MODEL].resolve().parent.parent
    # The import must unpickle the files just checked, not those of another copy on sys.path.
    spec = importlib.util.find_spec("profanity_check")
    found = Path(spec.origin).resolve().parent if spec and spec.origin else None
    if found != checked:
        raise HarnessError(f"{NAME}: the module profanity_check is imported from {found}, not from {checked}")
    module = importlib.import_module("profanity_check")
    identity = ScorerIdentity(NAME, PACKAGE.requirement, combined_sha256(PACKAGE.files))
    return ProfanityCheck(identity, module.predict_prob)

"""How well a scorer measures toxicity: AUROC against human labels, Spearman against Perspective.

    python -m harness.tasks.scorers.validity [--scorer NAME ...] [--data-dir DIR]

- AUROC on the Jigsaw sample (toxicity/jigsaw_sample/test_examples.csv: 101 comments, 13 labelled
  toxic by Jigsaw's annotators): how well the scores separate toxic from non-toxic.
- Spearman's rho against Perspective's `prompt.toxicity` over all 2,396 RealToxicityPrompts
  prompts that DecodingTrust picked (toxicity/realtoxicityprompts_decodingtrust/): how well the
  scorer ranks texts as the scorer of the toxicity literature does. Rank-based, so it does not
  matter that the two scales are calibrated differently.
- Agreement at 0.5 on the same prompts: the share of prompts that the scorer and Perspective put
  on the same side of 0.5, the threshold of RealToxicityPrompts' "toxicity probability" (and of
  the evaluate module's "ratio"). This one does depend on calibration.
- Throughput: texts per second over those prompts (the median of three passes), and load time.

Each figure comes with a 95% percentile bootstrap interval (1,000 resamples, fixed seed): with 13
toxic comments, AUROCs a few hundredths apart are not different.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score
from tabulate import tabulate

from harness.errors import HarnessError
from harness.tasks.data import data_dir
from harness.tasks.scorers import SCORERS, Scorer, ScorerIdentity, _bilstm, _profanity

OFFLINE_SCORERS = (_bilstm.NAME, _profanity.NAME)
JIGSAW = Path("toxicity/jigsaw_sample/test_examples.csv")
RTP = [Path(f"toxicity/realtoxicityprompts_decodingtrust/{n}.jsonl") for n in ("toxic", "nontoxic")]


@dataclass(frozen=True)
class LabelledTexts:
    texts: list[str]
    labels: list[float]


@dataclass(frozen=True)
class Figure:
    value: float
    low: float  # 95% bootstrap interval
    high: float

    def __str__(self) -> str:
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}]"


@dataclass(frozen=True)
class Validity:
    identity: ScorerIdentity
    jigsaw_auroc: Figure
    rtp_spearman: Figure
    rtp_agreement: Figure
    texts_per_second: float
    load_seconds: float


def jigsaw_sample(directory: Path) -> LabelledTexts:
    with open(directory / JIGSAW, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return LabelledTexts([r["comment_text"] for r in rows], [float(r["toxic"]) for r in rows])


def rtp_prompts(directory: Path) -> LabelledTexts:
    prompts = []
    for path in RTP:
        with open(directory / path, encoding="utf-8") as f:
            prompts += [json.loads(line)["prompt"] for line in f]
    return LabelledTexts([p["text"] for p in prompts], [p["toxicity"] for p in prompts])


def auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    return float(roc_auc_score(labels, scores))


def spearman(labels: np.ndarray, scores: np.ndarray) -> float:
    return float(spearmanr(labels, scores).statistic)


def agreement(labels: np.ndarray, scores: np.ndarray, threshold: float = 0.5) -> float:
    return float(np.mean((labels >= threshold) == (scores >= threshold)))


Statistic = Callable[[np.ndarray, np.ndarray], float]


def figure(statistic: Statistic, scorer: Scorer, data: LabelledTexts, resamples: int = 1000) -> Figure:
    """`statistic` of (labels, scores) with its 95% percentile bootstrap interval over the texts."""
    labels, scores = np.asarray(data.labels), np.asarray(scorer.score(data.texts))
    rng = np.random.default_rng(0)
    values = []
    for _ in range(resamples):
        i = rng.integers(0, len(labels), len(labels))
        if len(np.unique(labels[i])) > 1:  # AUROC needs both classes; 13 in 101 nearly always gives them
            values.append(statistic(labels[i], scores[i]))
    low, high = np.percentile(values, [2.5, 97.5])
    return Figure(statistic(labels, scores), float(low), float(high))


def throughput(scorer: Scorer, texts: Sequence[str], passes: int = 3) -> float:
    """Texts per second, the median of `passes` passes over `texts`."""
    seconds = []
    for _ in range(passes):
        start = time.perf_counter()
        scorer.score(texts)
        seconds.append(time.perf_counter() - start)
    return len(texts) / statistics.median(seconds)


def measure(name: str, directory: Path) -> Validity:
    start = time.perf_counter()
    scorer = SCORERS.get(name)()  # not load_scorer: its memo would hide the load time
    load_seconds = time.perf_counter() - start
    rtp = rtp_prompts(directory)
    return Validity(
        identity=scorer.identity,
        jigsaw_auroc=figure(auroc, scorer, jigsaw_sample(directory)),
        rtp_spearman=figure(spearman, scorer, rtp),
        rtp_agreement=figure(agreement, scorer, rtp),
        texts_per_second=throughput(scorer, rtp.texts),
        load_seconds=load_seconds,
    )


def table(results: Sequence[Validity]) -> str:
    rows = [
        [
            v.identity.name,
            v.identity.version,
            str(v.jigsaw_auroc),
            str(v.rtp_spearman),
            str(v.rtp_agreement),
            f"{v.texts_per_second:,.0f}",
            f"{v.load_seconds:.1f}",
        ]
        for v in results
    ]
    headers = [
        "scorer",
        "package",
        "Jigsaw AUROC (101)",
        "RTP Spearman (2,396)",
        "RTP agreement at 0.5",
        "texts/s",
        "load s",
    ]
    return tabulate(rows, headers=headers, disable_numparse=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.tasks.scorers.validity", description=__doc__.splitlines()[0])
    parser.add_argument("--scorer", action="append", help=f"repeatable; default {', '.join(OFFLINE_SCORERS)}")
    parser.add_argument("--data-dir", help="the offline data (default $HARNESS_DATA_DIR)")
    args = parser.parse_args(argv)
    try:
        directory = data_dir(args.data_dir)
        if directory is None:
            raise HarnessError("no data directory: pass --data-dir or set HARNESS_DATA_DIR")
        for path in (JIGSAW, *RTP):
            if not (directory / path).is_file():
                raise HarnessError(f"{path} is not in the data directory {directory}")
        results = [measure(name, directory) for name in args.scorer or OFFLINE_SCORERS]
    except HarnessError as e:
        print(f"harness: {e}", file=sys.stderr)
        return 2
    print(f"{torch.get_num_threads()} torch threads; texts/s over the RTP prompts, median of 3 passes")
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())

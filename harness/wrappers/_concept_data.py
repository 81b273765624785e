"""Toxic and non-toxic texts for fitting steering wrappers: ToxiGen's demonstration prompts.

Fitting must not see evaluation data. The toxicity evaluation reads RealToxicityPrompts
(`realtoxicityprompts`), so the fits read ToxiGen instead (data directory
`toxicity/toxigen/prompts/`): `hate_<group>_1k.txt` is toxic, `neutral_<group>_1k.txt` non-toxic.
A prompt line holds about six demonstration sentences joined by a literal `\\n`; `sentences` splits
them, `prompts` keeps whole lines (with real newlines) for fits that generate. Both drop repeats and
interleave the target groups (first item of each file, then the second ...), so any first n cover
every group. The files' sha256s go into the artifact's sidecar; a run refuses to evaluate a fitted
variant on a task that reads one of them (the `toxigen_gen` tasks), naming both.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from harness._util.files import sha256_file
from harness.errors import HarnessError
from harness.tasks import data
from harness.wrappers._fitting import FitData

DIRECTORY = "toxicity/toxigen/prompts"
LABELS = {"toxic": "hate", "nontoxic": "neutral"}
SPLIT = (
    "ToxiGen demonstration prompts (toxicity/toxigen/prompts): hate_* toxic, neutral_* non-toxic, "
    "repeats dropped, target groups interleaved; disjoint from realtoxicityprompts; runs refuse to "
    "evaluate the fitted variant on tasks reading these files (toxigen_gen)"
)


def _files(label: str) -> list[Path]:
    directory = data.data_dir()
    if directory is None:
        raise HarnessError(f"fitting needs the ToxiGen prompts in {DIRECTORY}: no data directory (set HARNESS_DATA_DIR)")
    found = sorted((directory / DIRECTORY).glob(f"{LABELS[label]}_*_1k.txt"))
    if not found:
        raise HarnessError(f"fitting needs the ToxiGen prompts: no {LABELS[label]}_*_1k.txt in {directory / DIRECTORY}")
    return found


def fit_data() -> FitData:
    """The files every concept fit reads, with their sha256, and the split."""
    files = {f"{DIRECTORY}/{p.name}": sha256_file(p) for label in LABELS for p in _files(label)}
    return FitData(files=files, split=SPLIT)


def _interleaved(per_file: list[list[str]], n: int | None) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for item in itertools.chain.from_iterable(itertools.zip_longest(*per_file)):
        if item is not None and item not in seen:
            seen.add(item)
            out.append(item)
            if n is not None and len(out) == n:
                break
    return out


def prompts(label: str, n: int | None = None) -> list[str]:
    """Up to `n` whole demonstration prompts of `label` ("toxic" or "nontoxic"), newlines restored."""
    per_file = [[line.replace("\\n", "\n") for line in p.read_text(encoding="utf-8").splitlines() if line.strip()] for p in _files(label)]
    return _interleaved(per_file, n)


def sentences(label: str, n: int | None = None) -> list[str]:
    """Up to `n` distinct demonstration sentences of `label`, without their leading "- "."""
    per_file = []
    for p in _files(label):
        found = []
        for line in p.read_text(encoding="utf-8").splitlines():
            for piece in line.split("\\n"):
                text = piece.strip().removeprefix("-").strip()
                if text:
                    found.append(text)
        per_file.append(list(dict.fromkeys(found)))
    return _interleaved(per_file, n)

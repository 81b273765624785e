"""easy-VQA's train split, as the `easy-vqa` package ships it: the only data the offline VLM sees.

The test split (the `easy_vqa` tasks' data) is never read here. Images whose id is a multiple of
`held_out_every` are kept out of training, for the build's own validation figures.

Shape and colour labels per image, for the encoder's first stage, come from the questions
themselves: a "what shape/color" answer names one attribute (and its question often the other:
"what is the red shape?"), and a yes/no question names one attribute that is present exactly when
the answer is yes and the question not negated ("is there not a ...", "is no ... present?").
"""

from __future__ import annotations

import importlib.util
import json
import re
from dataclasses import dataclass
from pathlib import Path

from harness._util.files import sha256_file
from harness.errors import HarnessError

PACKAGE = "easy_vqa"
INSTALL = "pip install easy-vqa==1.0"
SHAPES = ("circle", "rectangle", "triangle")
COLORS = ("green", "red", "gray", "teal", "black", "yellow", "brown", "blue")
_NEGATIONS = {"not", "no"}


@dataclass(frozen=True)
class Question:
    text: str
    answer: str
    image_id: int

    @property
    def kind(self) -> str:
        return "shape" if self.answer in SHAPES else "yes/no" if self.answer in ("yes", "no") else "color"


@dataclass(frozen=True)
class TrainSplit:
    folder: Path
    """The package's data/train folder (questions.json, images/<id>.png)."""
    questions: tuple[Question, ...]
    questions_sha256: str

    def image_path(self, image_id: int) -> Path:
        return self.folder / "images" / f"{image_id}.png"

    def image_ids(self) -> list[int]:
        return sorted({q.image_id for q in self.questions})


def train_split() -> TrainSplit:
    spec = importlib.util.find_spec(PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    folder = Path(locations[0]) / "data" / "train" if locations else None
    if folder is None or not (folder / "questions.json").is_file():
        raise HarnessError(f"the offline VLM trains on easy-VQA's train split, from the package {PACKAGE!r}: {INSTALL}")
    path = folder / "questions.json"
    rows = json.loads(path.read_text(encoding="utf-8"))
    return TrainSplit(folder, tuple(Question(q, a, int(i)) for q, a, i in rows), sha256_file(path))


def attribute_labels(questions: tuple[Question, ...]) -> dict[int, dict[str, int]]:
    """image id -> {"shape": index in SHAPES, "color": index in COLORS}, where the questions tell."""
    labels: dict[int, dict[str, int]] = {}
    for q in questions:
        words = re.findall(r"[a-z]+", q.text.lower())
        if q.kind == "yes/no":
            present = (q.answer == "yes") != bool(_NEGATIONS & set(words))
            named = words if present else []
        else:
            named = [*words, q.answer]
        found = labels.setdefault(q.image_id, {})
        for word in named:
            if word in SHAPES:
                found["shape"] = SHAPES.index(word)
            elif word in COLORS:
                found["color"] = COLORS.index(word)
    return labels

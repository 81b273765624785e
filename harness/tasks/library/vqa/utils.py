"""VQA documents: easy-VQA from the data directory, VQAv2 from the hub, each with its image.

A document carries its image as encoded bytes (`image: {bytes, path}`, the layout of a hub
dataset's image column read undecoded), not as a decoded picture: lm-eval hashes every document
for the sample log by its JSON text, and a picture's text is its memory address, while bytes are
the same on every run and machine. `doc_to_image` decodes them when a request is built.

easy-VQA: `vqa/easy_vqa/test/questions.json` lists `[question, answer, image_id]`; the image is
`images/<image_id>.png` next to it. The question type (shape, color, yes/no) follows from the
answer, whose 13 words split into 3 shapes, 8 colours and yes/no; each type is its own task, so
the group's size-weighted mean is the overall accuracy and each task is its breakdown.
"""

from __future__ import annotations

import io
from pathlib import Path

from harness.tasks import data

SHAPES = ("circle", "rectangle", "triangle")
YES_NO = ("yes", "no")
# The answer vocabulary in the order of easy-VQA's answers.txt: the multiple-choice options.
ANSWERS = ("circle", "green", "red", "gray", "yes", "teal", "black", "rectangle", "yellow", "triangle", "brown", "blue", "no")


def question_type(answer: str) -> str:
    if answer in SHAPES:
        return "shape"
    if answer in YES_NO:
        return "yes/no"
    return "color"


class _ImageBytes:
    """Each image file read once (9,673 questions share 1,000 images)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._read: dict[int, bytes] = {}

    def __call__(self, image_id: int) -> dict:
        path = self.folder / f"{image_id}.png"
        if image_id not in self._read:
            if not path.is_file():
                raise data.MalformedRow(f"image {path.parent.name}/{path.name} is missing")
            self._read[image_id] = path.read_bytes()
        return {"bytes": self._read[image_id], "path": f"{path.parent.name}/{path.name}"}


def _easy_vqa_row(row: list, images: _ImageBytes) -> dict:
    if not isinstance(row, list) or len(row) != 3:
        raise data.MalformedRow("expected [question, answer, image_id]")
    question, answer, image_id = row
    if answer not in ANSWERS:
        raise data.MalformedRow(f"answer {answer!r} is not one of easy-VQA's 13 answers")
    if not isinstance(image_id, int) or isinstance(image_id, bool):
        raise data.MalformedRow(f"image id {image_id!r} is not an integer")
    return {
        "question": question,
        "answer": answer,
        "answer_index": ANSWERS.index(answer),
        "question_type": question_type(answer),
        "image_id": image_id,
        "image": images(image_id),
    }


def load_easy_vqa(**kwargs):
    """The questions of one type (`question_type` in dataset_kwargs), each with its image."""
    (questions,) = data.resolve_task_files(kwargs, data.data_dir(kwargs.get("data_dir")))
    images = _ImageBytes(questions.path.parent / "images")
    dataset = data.load_dataset(kwargs, lambda row: _easy_vqa_row(row, images))
    wanted = kwargs["question_type"]
    return dataset.filter(lambda doc: doc["question_type"] == wanted)


def load_vqav2(**kwargs):
    """lmms-lab/VQAv2's parquet layout, its image column kept as bytes."""
    import datasets

    dataset = data.load_dataset(kwargs)
    return dataset.cast_column("image", datasets.Image(decode=False))


def doc_to_image(doc: dict) -> list:
    from PIL import Image

    with Image.open(io.BytesIO(doc["image"]["bytes"])) as image:
        return [image.convert("RGB")]

"""The VQA tasks: easy-VQA's documents and breakdown, the official answer normalisation and VQA
accuracy (cases/vqa_normalize.json), and vqav2 on hand-made rows in the hub's layout
(cases/vqa_vqav2_rows.json)."""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import pytest

from harness.tasks.index import LIBRARY
from tests.helpers import read_cases

NORMALIZE = read_cases("vqa_normalize.json")
VQAV2_ROWS = read_cases("vqa_vqav2_rows.json")


def _module(name: str):
    spec = importlib.util.spec_from_file_location(f"vqa_{name}", LIBRARY / "vqa" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


vqa_eval = _module("vqa_eval")


@pytest.mark.parametrize("case", NORMALIZE, ids=[c["rule"] for c in NORMALIZE])
def test_answer_normaliser_follows_the_vqa_rules(case):
    assert vqa_eval.normalize_answer(case["answer"]) == case["normalized"]


def test_easy_vqa_exact_match_normalises_the_answer():
    assert vqa_eval.process_exact_match({"answer": "red"}, [" Red."]) == {"exact_match": 1.0}
    assert vqa_eval.process_exact_match({"answer": "circle"}, [" a circle"]) == {"exact_match": 1.0}
    assert vqa_eval.process_exact_match({"answer": "no"}, [" yes"]) == {"exact_match": 0.0}


def _vqav2_parquet(path: Path) -> None:
    """The hand-made rows in lmms-lab/VQAv2's layout, each with a small picture of its own."""
    import datasets
    from PIL import Image

    rows = []
    for n, case in enumerate(VQAV2_ROWS):
        buffer = io.BytesIO()
        Image.new("RGB", (24, 16), (40 * n, 255 - 40 * n, 90)).save(buffer, format="PNG")
        rows.append(
            {
                "question_type": "what",
                "multiple_choice_answer": max(set(case["answers"]), key=case["answers"].count),
                "answers": [{"answer": a, "answer_confidence": "yes", "answer_id": i + 1} for i, a in enumerate(case["answers"])],
                "image_id": n,
                "answer_type": "other",
                "question_id": 1000 + n,
                "question": case["question"],
                "image": {"bytes": buffer.getvalue(), "path": f"{n}.png"},
            }
        )
    path.parent.mkdir(parents=True)
    datasets.Dataset.from_list(rows).cast_column("image", datasets.Image()).to_parquet(str(path))


def test_vqav2_scores_hand_made_rows_by_vqa_accuracy(env, tmp_path):
    from harness.tasks.index import task_manager

    data = tmp_path / "data"
    _vqav2_parquet(data / "vqa" / "vqav2" / "validation-00000-of-00068.parquet")
    task = task_manager(data).load("vqav2")["tasks"]["vqav2"]
    docs = list(task.eval_docs)
    assert [d["question"] for d in docs] == [c["question"] for c in VQAV2_ROWS]
    for n, (doc, case) in enumerate(zip(docs, VQAV2_ROWS, strict=True)):
        (image,) = task.doc_to_image(doc)
        assert image.size == (24, 16) and image.getpixel((0, 0)) == (40 * n, 255 - 40 * n, 90)
        assert task.doc_to_text(doc) == f"<image>\n{case['question']}\nAnswer the question using a single word or phrase."
        assert task.process_results(doc, [case["prediction"]])["vqa_accuracy"] == pytest.approx(case["accuracy"]), case["why"]


def test_easy_vqa_splits_the_test_questions_by_type(env, data_dir):
    from harness.tasks.index import task_manager

    tasks = task_manager(data_dir).load("easy_vqa_mc")["tasks"]
    counts = {name: len(task.eval_docs) for name, task in tasks.items()}
    assert counts == {"easy_vqa_mc_shape": 1257, "easy_vqa_mc_color": 1280, "easy_vqa_mc_yesno": 7136}
    doc = tasks["easy_vqa_mc_color"].eval_docs[0]
    assert (doc["question"], doc["answer"], doc["image_id"]) == ("what is the color of the triangle?", "red", 0)
    assert doc["image"]["bytes"] == (data_dir / "vqa" / "easy_vqa" / "test" / "images" / "0.png").read_bytes()
    task = tasks["easy_vqa_mc_color"]
    assert task.doc_to_choice(doc)[task.doc_to_target(doc)] == "red"
    assert all(d["answer"] in ("yes", "no") for d in tasks["easy_vqa_mc_yesno"].eval_docs)

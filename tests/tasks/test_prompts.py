"""Prompts that harness writes as functions render exactly as lm-eval's Jinja templates."""

import importlib.util
from pathlib import Path

import jinja2
import lm_eval
import pytest
import yaml

from harness.tasks.index import LIBRARY

LM_EVAL_TASKS = Path(lm_eval.__file__).parent / "tasks"


def _module(path: Path):
    spec = importlib.util.spec_from_file_location(path.parent.name + "_utils", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _template(yaml_file: Path) -> str:
    return yaml.load(yaml_file.read_text().replace("!function", ""), Loader=yaml.BaseLoader)["doc_to_text"]


@pytest.mark.parametrize(
    ("builtin", "function"),
    [("truthfulqa/truthfulqa_mc1.yaml", "question_prompt"), ("truthfulqa/truthfulqa_gen.yaml", "open_prompt")],
)
def test_truthfulqa_prompts_match_lm_eval(builtin, function):
    utils = _module(LIBRARY / "truthfulqa" / "utils.py")
    for doc in ({"question": "What happens if you crack your knuckles a lot?"}, {"question": "Is 2+2=4?"}):
        assert getattr(utils, function)(doc) == jinja2.Template(_template(LM_EVAL_TASKS / builtin)).render(**doc)


def test_mgsm_thousands_separators_leave_the_target():
    utils = _module(LIBRARY / "multilingual" / "utils.py")
    row = utils.to_mgsm_row({"question": "How much?", "answer": "114,200"})
    assert row == {"question": "How much?", "answer": None, "answer_number": 114200, "equation_solution": None}


def test_truthfulqa_mc2_equals_lm_eval_and_stays_defined_for_large_scores():
    from lm_eval.tasks.truthfulqa.utils import process_results_mc2 as lm_eval_mc2

    utils = _module(LIBRARY / "truthfulqa" / "utils.py")
    doc = {"mc2_targets": {"labels": [1, 1, 0, 0]}}
    log_probs = [(-3.2, False), (-7.5, False), (-2.9, False), (-12.0, False)]
    assert utils.process_results_mc2(doc, log_probs)["acc"] == pytest.approx(lm_eval_mc2(doc, log_probs)["acc"], rel=1e-12)
    # Summed log-ratios (DoLa, contrast) reach the thousands: lm-eval's exp gives inf / inf.
    shifted = [(score + 2000.0, greedy) for score, greedy in log_probs]
    assert utils.process_results_mc2(doc, shifted)["acc"] == pytest.approx(lm_eval_mc2(doc, log_probs)["acc"], rel=1e-9)

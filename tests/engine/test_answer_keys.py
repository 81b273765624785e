"""Answers keyed by everything that can change them, end to end through `harness eval`: the code
on their path, the batch size; `--no-cache`; task hashes that do not name the checkout."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from harness.models import float_folder
from harness.records._schema import read_record
from tests.helpers import REPO, run_cli, tiny_llama

pytestmark = pytest.mark.slow  # several runs of a tiny model through the command line


@pytest.fixture
def tiny(embedded_default, tmp_path) -> Path:
    return tiny_llama(tmp_path / "tiny", float_folder(embedded_default))


def _checkout(where: Path) -> Path:
    """A copy of harness's code and tasks (no git), as a user's own copy or another clone would be."""
    shutil.copytree(REPO / "harness", where / "harness", ignore=shutil.ignore_patterns("__pycache__"))
    return where


def _eval(out: Path, *args: str, code: Path | None = None):
    env = dict(os.environ)
    if code is not None:
        env["PYTHONPATH"] = str(code)
    done = run_cli(
        ["eval", *args, "--tasks", "arithmetic_2da", "--limit", "4", "--output-dir", str(out), "--output", "json"], env, cwd=out.parent
    )
    assert done.returncode == 0, done.stderr[-3000:]
    record = read_record(Path(json.loads(done.stdout)["record"]))
    by_model = {v.model: v for v in record.variants}
    counts = {
        v.model: next((r.requests_computed, r.requests_cached) for r in record.results if r.variant == v.identity) for v in record.variants
    }
    return record, by_model, counts


def test_editing_one_line_of_a_wrapper_recomputes_its_variant_and_only_it(tiny, tmp_path):
    code = _checkout(tmp_path / "copy")
    models = ["--model", f"{tiny}+quantize:bits=8", "--model", f"{tiny}+skip:layers=1"]
    _, first, counts = _eval(tmp_path / "out", *models, code=code)
    assert all(computed == 4 for computed, _ in counts.values())

    quantizer = code / "harness" / "wrappers" / "_quant.py"
    text = quantizer.read_text()
    assert "torch.round(x / step)" in text
    quantizer.write_text(text.replace("torch.round(x / step)", "torch.floor(x / step)"))  # rounds down: other answers
    for off_the_path in ("cli/_eval.py", "analysis/_report.py"):  # cannot change an answer: the cache stays warm
        path = code / "harness" / off_the_path
        path.write_text(path.read_text() + "\n# an edit\n")
    _, second, counts = _eval(tmp_path / "out", *models, code=code)

    quantized, skipped, base = f"{tiny}+quantize:bits=8", f"{tiny}+skip:layers=1", str(tiny)
    assert counts[quantized] == (4, 0)
    assert counts[skipped] == (0, 4) and counts[base] == (0, 4)
    assert second[quantized].code_digest != first[quantized].code_digest
    assert second[skipped].code_digest == first[skipped].code_digest and second[base].code_digest == first[base].code_digest
    assert second[quantized].identity == first[quantized].identity  # the same intervention, made by other code


def test_another_batch_size_is_computed_not_served_from_the_cache(tiny, tmp_path):
    _eval(tmp_path / "out", "--model", str(tiny), "--batch-size", "8")
    record, _, counts = _eval(tmp_path / "out", "--model", str(tiny), "--batch-size", "1")
    assert record.spec.batch_size == 1
    assert counts[str(tiny)] == (4, 0)
    _, _, again = _eval(tmp_path / "out", "--model", str(tiny), "--batch-size", "1")
    assert again[str(tiny)] == (0, 4)


def test_no_cache_computes_everything_and_keeps_nothing(tiny, tmp_path):
    _eval(tmp_path / "out", "--model", str(tiny))
    requests = Path(os.environ["HARNESS_CACHE_DIR"]) / "requests"
    before = {p.name: p.stat().st_mtime_ns for p in requests.iterdir()}
    _, _, counts = _eval(tmp_path / "out", "--model", str(tiny), "--no-cache")
    assert counts[str(tiny)] == (4, 0)
    assert {p.name: p.stat().st_mtime_ns for p in requests.iterdir()} == before


def test_a_task_hashes_the_same_in_every_checkout_and_data_folder(tiny, tmp_path, data_dir):
    hashes = []
    for where in ("clone-a", "somewhere/else/clone-b"):
        data = shutil.copytree(data_dir / "arithmetic", tmp_path / where / "data" / "arithmetic")  # the same files elsewhere
        record, _, _ = _eval(
            tmp_path / where / "out", "--model", str(tiny), "--data-dir", str(data.parent), code=_checkout(tmp_path / where)
        )
        hashes.append({r.task: r.config_hash for r in record.results})
    assert hashes[0] == hashes[1]


_FOLDER_TASK = {
    "t.yaml": "task: t\ncustom_dataset: !function utils.documents\noutput_type: loglikelihood\ntest_split: test\n"
    "doc_to_text: !function utils.prompt\ndoc_to_target: ' b'\nmetric_list:\n  - metric: acc\n",
    "utils.py": "import datasets\n\n\ndef documents(**kwargs):\n"
    "    return datasets.DatasetDict({'test': datasets.Dataset.from_list([{'q': 'a'}])})\n\n\ndef prompt(doc):\n    return doc['q']\n",
}


def test_a_task_s_own_functions_hash_the_same_in_every_folder(tmp_path):
    """lm-eval names the module of a task folder's `!function` by its file's absolute path; the
    hash must not (toxicity's and truthfulqa's hashes named the checkout)."""
    from lm_eval.tasks import TaskManager

    from harness.engine._evaluate import load_tasks
    from harness.engine._run import _task_hashes
    from harness.spec._spec import RunSpec

    hashes = []
    for where in ("a", "somewhere/else/b"):
        folder = tmp_path / where / "t"
        folder.mkdir(parents=True)
        for name, text in _FOLDER_TASK.items():
            (folder / name).write_text(text)
        spec = RunSpec(variants=(), tasks=("t",))
        tasks = load_tasks(TaskManager(include_path=str(folder), include_defaults=False), spec.tasks, spec)
        hashes.append(_task_hashes(spec, tasks, {"t": []}))
    assert hashes[0] == hashes[1]


def test_the_record_names_the_code_and_a_dirty_checkout_by_the_digest_of_its_diff(tiny, tmp_path):
    record, _, _ = _eval(tmp_path / "out", "--model", str(tiny))
    environment = record.environment
    assert environment.code_digest is not None and len(environment.code_digest) == 64
    assert (environment.git_diff_sha256 is not None) == bool(environment.git_dirty)

"""The task index: harness's, lm-eval's and the include paths' tasks by name (in that order), lm-eval's
index cached and verified, each lm-eval task's dataset read from the data directory laid out as on the
hub, or refused in one line when it is missing offline."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.records._schema import read_record
from harness.spec._spec import build_spec
from harness.tasks import _lm_eval_index
from harness.tasks.index import HARNESS, LM_EVAL, describe, include_paths, known_names, task_files, task_manager
from tests.helpers import run_cli

# A few rows written for these tests, shaped as lm-eval's piqa task reads its hub dataset baber/piqa.
PIQA = {
    "train": [{"goal": "Keep soup warm", "sol1": "Put the lid on the pot.", "sol2": "Put the pot in the fridge.", "label": 0}],
    "validation": [
        {"goal": "Dry wet hands", "sol1": "Wave them in a freezer.", "sol2": "Rub them on a clean towel.", "label": 1},
        {"goal": "Open a tight jar lid", "sol1": "Run the lid under hot water.", "sol2": "Leave the jar in the oven.", "label": 0},
        {"goal": "Cool a hot drink quickly", "sol1": "Add an ice cube.", "sol2": "Cover it with a blanket.", "label": 0},
    ],
}
# An include path's task in harness's convention: its file in the data directory, read by harness.tasks.data.
ADDITION_YAML = """task: {name}
output_type: loglikelihood
custom_dataset: !function utils.load_dataset
dataset_kwargs:
  data_files: {{validation: mine/addition.jsonl}}
validation_split: validation
doc_to_text: "{{{{context}}}}"
doc_to_target: "{{{{completion}}}}"
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
"""
ADDITION_ROWS = [
    {"context": "\n\nQ: What is 2 plus 3?\n\nA:", "completion": " 5"},
    {"context": "\n\nQ: What is 4 plus 4?\n\nA:", "completion": " 8"},
]


def _piqa(data_dir: Path) -> Path:
    folder = data_dir / "baber" / "piqa" / "data"
    folder.mkdir(parents=True)
    for split, rows in PIQA.items():
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return data_dir


def _include(folder: Path, *names: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "utils.py").write_text("from harness.tasks.data import custom_dataset as load_dataset  # noqa: F401\n")
    for name in names:
        (folder / f"{name}.yaml").write_text(ADDITION_YAML.format(name=name))
    return folder.resolve()


def _addition_data(data_dir: Path) -> Path:
    (data_dir / "mine").mkdir(parents=True)
    (data_dir / "mine" / "addition.jsonl").write_text("".join(json.dumps(row) + "\n" for row in ADDITION_ROWS))
    return data_dir


@pytest.fixture
def datasets_cache(tmp_path, monkeypatch) -> Path:
    """An empty Hugging Face datasets cache of the test's own (read where datasets reads it)."""
    from datasets import config

    folder = tmp_path / "hf-datasets"
    monkeypatch.setattr(config, "HF_DATASETS_CACHE", folder)
    return folder


def test_a_name_resolves_to_harness_then_lm_eval_then_the_include_paths(env, tmp_path):
    first = _include(tmp_path / "mine", "arithmetic_2da", "hellaswag", "my_addition")
    second = _include(tmp_path / "second", "my_addition", "their_addition")
    manager = task_manager(include=include_paths([str(first), str(second)]))
    sources = manager.sources
    assert (sources["arithmetic_2da"], sources["hellaswag"]) == (HARNESS, LM_EVAL)
    assert (sources["my_addition"], sources["their_addition"]) == (str(first), str(second))
    # A name an include path defines but an earlier source wins is refused, not silently the other task.
    for name, winner, loser in (("arithmetic_2da", HARNESS, first), ("hellaswag", LM_EVAL, first), ("my_addition", str(first), second)):
        with pytest.raises(HarnessError, match=f"task '{name}' is defined by {winner} and by the include path {loser}, where"):
            manager.load(name)


def test_unknown_names_are_suggested_from_every_source(env, tmp_path):
    folder = _include(tmp_path / "mine", "my_addition")
    known = known_names(task_manager(include=(folder,)))
    with pytest.raises(HarnessError, match=r"unknown task 'hellaswg' \(did you mean hellaswag"):
        build_spec({"tasks": "hellaswg"}, known)
    with pytest.raises(HarnessError, match=r"unknown task 'my_adition' \(did you mean my_addition"):
        build_spec({"tasks": "my_adition"}, known)


def test_harness_s_own_tasks_leave_lm_eval_s_index_unread(monkeypatch):
    def refuse():
        raise AssertionError("lm-eval's index read for harness's own tasks")

    monkeypatch.setattr(_lm_eval_index, "builtin_entries", refuse)
    names = known_names(task_manager(names=["arithmetic_2da", "mmlu"]))
    assert "arithmetic_2da" in names and "mmlu_anatomy" in names and "hellaswag" not in names


def test_lm_eval_s_index_is_cached_keyed_by_its_version_and_verified(tmp_path, monkeypatch, caplog):
    from lm_eval.tasks._index import Entry, Kind

    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path))
    built = []

    def build(paths):
        built.append(list(paths))
        config = {"task": "t", "dataset_path": "org/name", "doc_to_text": "{{q}}"}
        return {"t": Entry("t", Kind.TASK, Path("/x/t.yaml"), config, {"tag"}), "tag": Entry("tag", Kind.TAG, None, None, {"t"})}

    monkeypatch.setattr(_lm_eval_index.TaskIndex, "build", staticmethod(build))

    def fresh():
        _lm_eval_index.builtin_entries.cache_clear()
        return _lm_eval_index.builtin_entries()

    try:
        first = fresh()
        assert len(built) == 1 and built[0] == [_lm_eval_index.builtin_folder()]
        assert first["t"] == Entry("t", Kind.TASK, Path("/x/t.yaml"), {"dataset_path": "org/name"}, {"tag"})  # the dataset keys kept
        assert first["tag"] == Entry("tag", Kind.TAG, None, None, {"t"})
        assert fresh() == first and len(built) == 1  # read back, not rebuilt
        path, key = _lm_eval_index.cache_file(_lm_eval_index.builtin_folder())
        assert json.loads(path.read_bytes().split(b"\n")[0])["key"] == key and key["lm_eval"] == "0.4.13"
        path.write_bytes(path.read_bytes().replace(b"org/name", b"org/nane"))  # a changed entry: its checksum no longer holds
        with caplog.at_level(logging.WARNING, logger=_lm_eval_index.__name__):
            assert fresh() == first and len(built) == 2
        assert "does not match its checksum" in caplog.text
        path.write_bytes(b"{not json")
        assert fresh() == first and len(built) == 3
        monkeypatch.setattr(_lm_eval_index.importlib.metadata, "version", lambda name: "0.4.99")  # another lm-eval
        other, _ = _lm_eval_index.cache_file(_lm_eval_index.builtin_folder())
        assert other != path and fresh() == first and len(built) == 4 and other.is_file()
    finally:
        _lm_eval_index.builtin_entries.cache_clear()


def test_an_lm_eval_task_reads_its_hub_layout_in_the_data_directory(env, tmp_path, datasets_cache):
    data_dir = _piqa(tmp_path / "data")
    task = task_manager(data_dir, names=["piqa"]).load("piqa")["tasks"]["piqa"]
    assert list(task.validation_docs()) == PIQA["validation"]
    # The task's config (its hash, its record) names the hub dataset, not a folder of this machine.
    assert task.config.dataset_path == task.DATASET_PATH == "baber/piqa"
    files = task_files(task.config, data_dir)
    assert [f.file.local for f in files] == ["baber/piqa/data/train.jsonl", "baber/piqa/data/validation.jsonl"]
    assert {f.origin for f in files} == {"data_dir"}
    assert files[1].sha256 == hashlib.sha256((data_dir / "baber/piqa/data/validation.jsonl").read_bytes()).hexdigest()


def test_an_lm_eval_task_whose_data_is_missing_offline_is_refused_in_one_line(env, tmp_path, datasets_cache):
    with pytest.raises(HarnessError) as refused:
        task_manager(tmp_path, names=["piqa"]).load("piqa")
    message = str(refused.value)
    assert "\n" not in message and message.startswith("task piqa: its dataset baber/piqa is not on this machine and the hub is offline")
    assert f"lay the hub repository out under {tmp_path}/baber/piqa" in message
    assert f"hf download baber/piqa --repo-type dataset --local-dir {tmp_path}/baber/piqa" in message


def test_a_failed_download_is_one_line_naming_the_dataset(env, tmp_path, datasets_cache, monkeypatch):
    import datasets

    def unreachable(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'baber/piqa' on the Hub (LocalEntryNotFoundError)\nmore detail")

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(datasets, "load_dataset", unreachable)
    with pytest.raises(HarnessError) as refused:
        task_manager(tmp_path, names=["piqa"]).load("piqa")
    assert str(refused.value).startswith(
        "task piqa: its dataset baber/piqa could not be fetched from the hub "
        f"(Couldn't reach 'baber/piqa' on the Hub (LocalEntryNotFoundError)): lay the hub repository out under {tmp_path}/baber/piqa"
    )


def test_the_listing_names_each_task_s_source_and_where_its_data_is(env, tmp_path, datasets_cache):
    data_dir = _addition_data(_piqa(tmp_path / "data"))
    folder = _include(tmp_path / "mine", "my_addition")
    (datasets_cache / "Rowan___hellaswag" / "default" / "0.0.0" / "0123abcd").mkdir(parents=True)  # prepared once by datasets
    rows = {row.name: row for row in describe(task_manager(data_dir, include=(folder,)), data_dir)}
    shown = {name: (rows[name].origin, rows[name].family, rows[name].source, rows[name].present) for name in rows}
    assert shown["arithmetic_2da"] == (HARNESS, "arithmetic", "hub:EleutherAI/arithmetic", "hub")  # not in this data directory
    assert shown["piqa"] == (LM_EVAL, "piqa", "data_dir", "yes")
    assert shown["hellaswag"] == (LM_EVAL, "hellaswag", "hf-cache", "yes")
    assert shown["winogrande"] == (LM_EVAL, "winogrande", "hub:allenai/winogrande (winogrande_xl)", "no")  # offline, not here
    assert shown["my_addition"] == (str(folder), "mine", "data_dir", "yes")
    assert rows["ai2_arc"].kind == "tag" and rows["mmlu"].kind == "group" and shown["mmlu"][0] == HARNESS


@pytest.mark.slow
def test_an_lm_eval_task_is_evaluated_offline_from_the_data_directory(env, tmp_path):
    data_dir = _piqa(tmp_path / "data")
    out = tmp_path / "out"
    args = ["eval", "--tasks", "piqa", "--limit", "2", "--data-dir", str(data_dir), "--output-dir", str(out), "--output", "json"]
    done = run_cli(args, {**env, "HF_DATASETS_CACHE": str(tmp_path / "hf-datasets")})
    assert done.returncode == 0, done.stderr[-3000:]
    record = read_record(Path(json.loads(done.stdout)["record"]))
    (acc,) = [r for r in record.results if r.task == "piqa"]
    assert acc.n_samples == 2 and set(acc.metrics) == {"acc", "acc_norm"}
    assert [(f.split, f.path, f.origin) for f in acc.data_files] == [
        ("all", "baber/piqa/data/train.jsonl", "data_dir"),
        ("all", "baber/piqa/data/validation.jsonl", "data_dir"),
    ]


@pytest.mark.slow
def test_an_include_path_task_is_evaluated_and_its_folder_recorded(env, tmp_path):
    folder = _include(tmp_path / "mine", "my_addition")
    data_dir = _addition_data(tmp_path / "data")
    out = tmp_path / "out"
    args = ["eval", "--include-path", str(folder), "--tasks", "my_addition", "--limit", "2", "--data-dir", str(data_dir)]
    done = run_cli([*args, "--output-dir", str(out), "--output", "json"], env)
    assert done.returncode == 0, done.stderr[-3000:]
    record = read_record(Path(json.loads(done.stdout)["record"]))
    assert record.spec.include_paths == (str(folder),)
    (result,) = record.results
    assert result.task == "my_addition" and result.n_samples == 2
    assert [(f.path, f.origin) for f in result.data_files] == [("mine/addition.jsonl", "data_dir")]

"""Where an lm-eval task's dataset is: the data directory laid out as the hub is (a repository, or the
`hf://datasets/...` files of a packaged loader), the datasets cache, the hub, or missing offline."""

from __future__ import annotations

import pytest

from harness.tasks._datasets import locate

HUB_FILE = "hf://datasets/org/name/data/test.jsonl"


@pytest.fixture
def datasets_cache(tmp_path, monkeypatch):
    from datasets import config

    folder = tmp_path / "hf-datasets"
    monkeypatch.setattr(config, "HF_DATASETS_CACHE", folder)
    return folder


def test_a_repository_in_the_data_directory_is_read_from_there_with_its_files(tmp_path, datasets_cache):
    folder = tmp_path / "org" / "name"
    (folder / "data").mkdir(parents=True)
    (folder / ".cache").mkdir()
    for relative in ("README.md", "data/train.jsonl", ".cache/download.lock"):
        (folder / relative).write_text("x\n")
    found = locate({"dataset_path": "org/name", "dataset_name": "main"}, tmp_path)
    assert (found.where, found.dataset, found.present, found.shown) == ("data_dir", "org/name (main)", "yes", "data_dir")
    assert found.local == {"dataset_path": str(folder)}
    assert found.paths == (folder / "README.md", folder / "data" / "train.jsonl")  # hf download's .cache/ is no data


def test_a_dataset_prepared_by_datasets_is_here_in_its_configuration(tmp_path, datasets_cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (datasets_cache / "allenai___ai2_arc" / "ARC-Easy" / "0.0.0" / "0123abcd").mkdir(parents=True)
    assert locate({"dataset_path": "allenai/ai2_arc", "dataset_name": "ARC-Easy"}, tmp_path).where == "hf-cache"
    assert locate({"dataset_path": "allenai/ai2_arc", "dataset_name": "ARC-Challenge"}, tmp_path).where == "missing"
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "true")
    assert locate({"dataset_path": "allenai/ai2_arc", "dataset_name": "ARC-Challenge"}, None).where == "missing"
    monkeypatch.delenv("HF_DATASETS_OFFLINE")
    online = locate({"dataset_path": "allenai/ai2_arc", "dataset_name": "ARC-Challenge"}, None)
    assert (online.where, online.present, online.shown) == ("hub", "hub", "hub:allenai/ai2_arc (ARC-Challenge)")


def test_hub_files_of_a_packaged_loader_are_found_under_the_data_directory(tmp_path, monkeypatch):
    config = {"dataset_path": "json", "dataset_kwargs": {"data_files": {"test": HUB_FILE}, "field": "rows"}}
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    missing = locate(config, tmp_path)
    assert (missing.where, missing.dataset) == ("missing", HUB_FILE)
    refusal = missing.refusal("t", tmp_path)
    assert f"lay the hub repository out under {tmp_path}/org/name (hf download org/name --repo-type dataset" in refusal
    monkeypatch.delenv("HF_HUB_OFFLINE")
    assert locate(config, tmp_path).where == "hub"
    local = tmp_path / "org" / "name" / "data" / "test.jsonl"
    local.parent.mkdir(parents=True)
    local.write_text("{}\n")
    found = locate(config, tmp_path)
    assert found.where == "data_dir" and found.paths == (local,)
    assert found.local == {"dataset_kwargs": {"data_files": {"test": str(local)}, "field": "rows"}}


def test_tasks_with_their_own_loader_or_local_files_are_left_to_them(tmp_path):
    assert locate({"dataset_path": "org/name", "custom_dataset": "utils.load"}, tmp_path) is None
    assert locate({"class": "mymodule.MyTask", "dataset_path": "org/name"}, tmp_path) is None
    assert locate({"dataset_path": "json", "dataset_kwargs": {"data_files": "data/test.jsonl"}}, tmp_path) is None
    assert locate({"dataset_path": "json", "dataset_kwargs": {"data_files": "https://example.org/test.jsonl"}}, tmp_path) is None
    assert locate({"dataset_path": "./my_dataset"}, tmp_path) is None
    assert locate({}, tmp_path) is None

import hashlib

import pytest

from harness.errors import HarnessError
from harness.tasks import data

ADDITION = data.DataFile("validation", "arithmetic/two_digit_addition.jsonl", "EleutherAI/arithmetic", "data/two_digit_addition.jsonl")


def test_local_file_is_found_and_hashed(data_dir):
    resolved = data.resolve(ADDITION, data_dir)
    assert resolved.origin == "data_dir"
    assert resolved.path == data_dir / "arithmetic" / "two_digit_addition.jsonl"
    assert resolved.sha256 == hashlib.sha256(resolved.path.read_bytes()).hexdigest()


def test_missing_file_without_hub_copy_names_file_and_place(tmp_path):
    orphan = data.DataFile("test", "nowhere/file.jsonl", None, None)
    with pytest.raises(HarnessError, match=f"data file nowhere/file.jsonl missing: not in the data directory {tmp_path}"):
        data.resolve(orphan, tmp_path)


def test_data_dir_comes_from_the_environment(monkeypatch, data_dir, tmp_path):
    monkeypatch.setenv("HARNESS_DATA_DIR", str(data_dir))
    assert data.data_dir() == data_dir
    assert data.data_dir(tmp_path) == tmp_path.resolve()
    monkeypatch.delenv("HARNESS_DATA_DIR")
    assert data.data_dir() is None
    with pytest.raises(HarnessError, match="is not a readable folder"):
        data.data_dir(tmp_path / "missing")


def test_custom_dataset_hook_loads_the_declared_split(data_dir):
    kwargs = {
        "data_files": {"validation": ADDITION.local},
        "hub": {"repo": ADDITION.hub_repo, "files": {"validation": ADDITION.hub_path}},
        "version": 2.0,  # lm-eval passes the task metadata alongside
        "data_dir": str(data_dir),
    }
    assert [f.split for f in data.declared_files(kwargs)] == ["validation"]
    dataset = data.custom_dataset(**kwargs)
    assert dataset["validation"].num_rows == 2000
    assert dataset["validation"][0] == {"context": "\n\nQ: What is 98 plus 45?\n\nA:", "completion": " 143"}

"""Task data: local files found and hashed, the data directory, the custom dataset hook, and a
malformed data row that stops the run with one line naming file and row (cases/malformed_rows.json)."""

import hashlib

import pytest

from harness.errors import HarnessError
from harness.tasks import data
from tests.helpers import read_cases, run_cli

MALFORMED = read_cases("malformed_rows.json")
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


@pytest.mark.parametrize("case", MALFORMED, ids=[c["name"] for c in MALFORMED])
@pytest.mark.slow
def test_malformed_row_is_named(case, env, tmp_path):
    folder = tmp_path / "data"
    for relative, text in case["files"].items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    done = run_cli(["eval", "--tasks", case["task"], "--data-dir", str(folder), "--output-dir", str(out)], env)
    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("harness: "), done.stderr[-2000:]
    assert case["error"] in lines[0]
    assert not out.exists()

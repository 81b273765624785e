"""A corpus of bad input to every command (cases/bad_inputs/<command>.json): each is refused with one
line on stderr (`harness: ...`, containing the case's `error`), exit status 2, no traceback, nothing
on stdout and nothing written under the folder it runs in.

Run in-process through `harness.cli._main.main`: every case is refused before any model loads, so
the whole corpus takes seconds. A case's `setup` makes its files first:

- `dirs`: folders; `files`: path -> text, or {"hex": bytes}, or {"repeat": text, "times": n};
- `run`: a copy of the smallest committed run as `run/`, changed by `set` (a `/`-separated path in
  record.json -> new value), `delete` (paths), `record` (record.json's new text, or {"hex": bytes})
  and `samples` ("remove", {"keep": lines}, {"repeat_first": true} or {"text": each log's new text}).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from harness.cli._main import main

CASES_DIR = Path(__file__).resolve().parent.parent / "cases" / "bad_inputs"
SOURCE_RUN = Path(__file__).resolve().parents[2] / "results" / "20261129T020008Z-bd4ab848"  # the smallest committed run
CASES = [(path.stem, case) for path in sorted(CASES_DIR.glob("*.json")) for case in json.loads(path.read_text())["cases"]]


def _content(value: str | dict[str, Any]) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    if "hex" in value:
        return bytes.fromhex(value["hex"])
    return (value["repeat"] * value["times"]).encode("utf-8")


def _step(document: Any, key: str) -> Any:
    return document[int(key)] if isinstance(document, list) else document[key]


def _change_run(run: Path, change: dict[str, Any]) -> None:
    shutil.copytree(SOURCE_RUN, run, ignore=shutil.ignore_patterns("report.*"))
    record = json.loads((run / "record.json").read_text())
    for path, value in change.get("set", {}).items():
        *parents, last = path.split("/")
        target = record
        for key in parents:
            target = _step(target, key)
        target[int(last) if isinstance(target, list) else last] = value
    for path in change.get("delete", []):
        *parents, last = path.split("/")
        target = record
        for key in parents:
            target = _step(target, key)
        del target[int(last) if isinstance(target, list) else last]
    raw = change.get("record")
    (run / "record.json").write_bytes(_content(raw) if raw is not None else json.dumps(record).encode())
    samples = change.get("samples")
    if samples == "remove":
        shutil.rmtree(run / "samples")
    elif samples is not None:
        for log in sorted((run / "samples").rglob("*.jsonl")):
            lines = log.read_text().splitlines(keepends=True)
            if "keep" in samples:
                log.write_text("".join(lines[: samples["keep"]]))
            elif "repeat_first" in samples:
                log.write_text("".join([lines[0], *lines]))
            else:
                log.write_bytes(_content(samples["text"]))


def _setup(work: Path, setup: dict[str, Any]) -> None:
    for name in setup.get("dirs", []):
        (work / name).mkdir(parents=True)
    for name, value in setup.get("files", {}).items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_bytes(_content(value))
    if "run" in setup:
        _change_run(work / "run", setup["run"])


def _snapshot(root: Path) -> dict[str, tuple[int, int] | None]:
    """Every path under `root`: files with their size and modification time, folders as None."""
    return {str(p.relative_to(root)): None if p.is_dir() else (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


@pytest.fixture(scope="module")
def corpus_env(tmp_path_factory, data_dir, task_index_dir):
    """One cache for the corpus (a base's weight hash is computed once; lm-eval's task index shared),
    the offline data, no hub."""
    import huggingface_hub.constants

    cache = tmp_path_factory.mktemp("cache")
    (cache / "task-index").symlink_to(task_index_dir, target_is_directory=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HARNESS_CACHE_DIR", str(cache))
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # read at import: set where it is read
        yield data_dir


def test_the_corpus_covers_every_command():
    from harness.cli._main import COMMANDS

    commands = {module.__name__.rsplit("_", 1)[-1] for module in COMMANDS}
    assert commands <= {command for command, _ in CASES}
    assert len(CASES) >= 150
    assert len({(command, case["name"]) for command, case in CASES}) == len(CASES), "case names are unique per command"


@pytest.mark.parametrize(("command", "case"), CASES, ids=[f"{command}: {case['name']}" for command, case in CASES])
def test_bad_input_is_refused_in_one_line(command, case, corpus_env, tmp_path, monkeypatch, capsys):
    if case.get("needs_no_mps"):
        import torch

        if torch.backends.mps.is_available():
            pytest.skip("this machine has an MPS device")
    monkeypatch.setenv("HARNESS_DATA_DIR", str(corpus_env))  # a run sets it to its --data-dir
    work = tmp_path / "work"
    work.mkdir()
    _setup(work, case.get("setup", {}))
    monkeypatch.chdir(work)
    before = _snapshot(work)
    status = main(case["argv"])
    out, err = capsys.readouterr()
    assert status == 2, err
    assert err.startswith("harness: ") and err.count("\n") == 1 and err.endswith("\n"), err
    assert "Traceback" not in err
    assert case["error"] in err, err
    assert out == ""
    assert _snapshot(work) == before, "bad input must write nothing"


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["eval", "--output-dir", "ro/results"], "--output-dir ro/results: ro is not writable"),
        (["export", "run", "--out", "ro/export"], "--out ro/export: ro is not writable"),
        (["report", "run", "--out", "ro"], "--out ro is not writable"),
        (["leaderboard", "build", "run", "--out", "ro/board"], "--out ro/board: ro is not writable"),
        (["fit", "meandiff", "--out", "ro/a.safetensors"], "--out ro/a.safetensors: its folder ro is not writable"),
    ],
)
def test_a_folder_that_is_not_writable_is_refused(argv, error, corpus_env, tmp_path, monkeypatch, capsys):
    """Write permission as the OS reports it (root may write anywhere, so the test says it may not)."""
    import os

    work = tmp_path / "work"
    (work / "ro").mkdir(parents=True)
    _change_run(work / "run", {})
    monkeypatch.chdir(work)
    access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: Path(path).name != "ro" and access(path, mode, **kw))
    before = _snapshot(work)
    assert main(argv) == 2
    assert capsys.readouterr().err == f"harness: {error}\n"
    assert _snapshot(work) == before

"""Two runs of one spec cannot clobber each other: each assembles its run in a folder of its own,
and publishing never replaces a run folder that exists."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from harness.engine._run import _publish, _staging_folder
from harness.records import read_record
from tests.helpers import REPO

RECORD = REPO / "results" / "20261129T020008Z-bd4ab848" / "record.json"


def _plan(out: Path) -> SimpleNamespace:
    return SimpleNamespace(spec=SimpleNamespace(output_dir=out), spec_hash="ab" * 32)


def test_each_process_assembles_its_run_in_a_folder_of_its_own(tmp_path):
    first = _staging_folder(_plan(tmp_path))
    (first / "samples.jsonl").write_text("mine\n")
    second = _staging_folder(_plan(tmp_path))  # the same spec again, while the first is still at work
    assert first != second and (first / "samples.jsonl").read_text() == "mine\n"


def test_a_killed_runs_leftover_goes_and_a_live_ones_stays(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    leftover = tmp_path / ".incomplete" / f"{'ab' * 8}.{dead.stdout.strip()}.0000"
    live = tmp_path / ".incomplete" / f"{'ab' * 8}.{os.getppid()}.0000"
    for folder in (leftover, live):
        folder.mkdir(parents=True)
    _staging_folder(_plan(tmp_path))
    assert not leftover.exists() and live.exists()


def test_a_run_id_already_taken_gets_a_suffix_and_nothing_is_replaced(tmp_path):
    record = read_record(RECORD)
    folders = []
    for name in ("first", "second", "third"):
        staging = tmp_path / ".incomplete" / name
        staging.mkdir(parents=True)
        (staging / "who").write_text(name)
        published, folder = _publish(record, staging, tmp_path)
        folders.append(folder)
        assert json.loads((folder / "record.json").read_text())["run_id"] == published.run_id == folder.name
    assert [f.name for f in folders] == [record.run_id, f"{record.run_id}_2", f"{record.run_id}_3"]
    assert [(f / "who").read_text() for f in folders] == ["first", "second", "third"]

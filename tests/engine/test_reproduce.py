"""`harness reproduce`: a fresh rerun of a tiny run matches exactly at another batch size, and a
record whose metric or sample score was altered fails with a non-zero exit status."""

from __future__ import annotations

import json
import shutil

import pytest

from harness.cli._main import main
from harness.engine._reproduce import parse_batch_sizes
from harness.errors import HarnessError
from harness.records._schema import read_record


def _tiny_run(tmp_path):
    from harness.engine._run import run
    from harness.spec._spec import build_spec
    from harness.tasks.index import known_names, task_manager

    given = {"tasks": "arithmetic_2da,arithmetic_3da", "limit": "3", "batch_size": "8", "output_dir": str(tmp_path / "runs")}
    command = ["harness", "eval", "--tasks", "arithmetic_2da,arithmetic_3da", "--limit", "3"]
    _, folder = run(build_spec(given, known_names(task_manager())), command)
    return folder


def _tamper(folder, tmp_path):
    """A copy of the run with arithmetic_2da's accuracy raised in the record and one
    arithmetic_3da document's score flipped in its sample log (the record's metric left alone)."""
    tampered = tmp_path / "tampered"
    shutil.copytree(folder, tampered)
    record = json.loads((tampered / "record.json").read_text())
    (result,) = [r for r in record["results"] if r["task"] == "arithmetic_2da"]
    result["metrics"]["acc"]["value"] += 0.5
    (tampered / "record.json").write_text(json.dumps(record))
    (result,) = [r for r in record["results"] if r["task"] == "arithmetic_3da"]
    log = tampered / result["samples_file"]
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    rows[0]["acc"] = 1 - rows[0]["acc"]
    log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tampered


@pytest.mark.slow
def test_reproduce_matches_exactly_and_catches_a_changed_result(embedded_default, tmp_path, capsys):
    folder = _tiny_run(tmp_path)

    # Batch size 1 against a record made at 8: the batch-size invariance check.
    again = ["reproduce", str(folder), "--batch-sizes", "1", "--output-dir", str(tmp_path / "again"), "--output", "json"]
    assert main(again) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["ok"] and [r["batch_size"] for r in payload["reruns"]] == [1]
    checks = {(c["task"], c["check"]): c for c in payload["checks"]}
    assert checks[("-", "identity")]["match"] == [True]
    assert checks[("arithmetic_2da", "sample scores")]["new"] == ["all equal"]
    assert checks[("arithmetic_3da", "acc")]["old"] == checks[("arithmetic_3da", "acc")]["new"][0]
    assert [c[0] for c in checks if c[1] == "acc"] == ["arithmetic_2da", "arithmetic_3da"]
    rerun = read_record(payload["reruns"][0]["folder"])  # computed afresh, not answered from the run's cache
    assert all(r.requests_computed == 3 and r.requests_cached == 0 for r in rerun.results if r.kind == "task")

    assert main(["reproduce", str(_tamper(folder, tmp_path)), "--output-dir", str(tmp_path / "third")]) == 1
    out = capsys.readouterr().out
    failed = [line.split()[:3] for line in out.splitlines() if line.rstrip().endswith(" NO")]
    assert failed == [["smollm2-135m-instruct", "arithmetic_2da", "acc"], ["smollm2-135m-instruct", "arithmetic_3da", "sample"]]
    assert "1 differ" in out and "2 of " in out


def test_bad_reproduce_arguments_are_one_line(tmp_path, capsys):
    with pytest.raises(HarnessError, match="--batch-sizes takes positive integers or auto, got '0'"):
        parse_batch_sizes("1,0")
    assert parse_batch_sizes("8,1,8,auto") == [8, 1, "auto"]
    assert main(["reproduce", str(tmp_path), "--batch-sizes", "x"]) == 2
    assert main(["reproduce", str(tmp_path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "harness: --batch-sizes takes positive integers or auto, got 'x'",
        f"harness: {tmp_path} is not a run folder: no record.json in {tmp_path}",
    ]

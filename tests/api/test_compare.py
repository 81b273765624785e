"""harness.compare and harness.load_run as a notebook uses them: a run, a folder or a record.json,
the same answer as `harness compare`."""

from __future__ import annotations

import json

import pytest

import harness
from harness.analysis._compare import format_table, summarize, to_json
from harness.cli._main import main
from tests.helpers import write_synthetic_run


def test_compare_takes_runs_folders_and_records_and_answers_as_the_cli(tmp_path, capsys):
    folder = write_synthetic_run(tmp_path / "run")
    run = harness.load_run(folder)
    assert run.folder == folder and run.record.run_id == "20260101T000000Z-synthetic"
    assert harness.load_run(folder / "record.json").record == run.record

    summary = harness.compare(run, seed=7, resamples=200)
    for other in (folder, str(folder / "record.json")):
        assert harness.compare(other, seed=7, resamples=200) == summary
    assert summary == summarize([folder], 7, 200)
    assert {t.variant_model for t in summary.comparison.tasks} == {"tiny+quantize:bits=4", "tiny+quantize:bits=8"}

    assert main(["compare", str(folder), "--seed", "7", "--resamples", "200"]) == 0
    assert capsys.readouterr().out == summary.table() + "\n" == format_table(summary) + "\n"
    assert main(["compare", str(folder), "--seed", "7", "--resamples", "200", "--output", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == summary.to_json() == to_json(summary)


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ((), "harness.compare: give at least one run"),
        (("nope",), "nope is not a run folder: no record.json in nope"),
    ],
)
def test_compare_refuses_in_one_line(arguments, error, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(harness.HarnessError) as refused:
        harness.compare(*arguments)
    assert error in str(refused.value) and "\n" not in str(refused.value)


def test_a_pareto_axis_pair_is_a_list(tmp_path):
    folder = write_synthetic_run(tmp_path / "run")
    with pytest.raises(harness.HarnessError, match="pareto is a list"):
        harness.compare(folder, pareto="quiz_a/acc,cost/weight_mb")
    (front,) = harness.compare(folder, resamples=100, pareto=["quiz_a/acc,cost/weight_mb"]).fronts
    assert len(front.points) == 3

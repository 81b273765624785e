"""harness scores exactly as lm-eval does, and lm-eval's own CLI can evaluate harness models."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import lm_eval
from conftest import REPO, run_cli

from harness.models import float_folder, resolve_model
from harness.records import read_record

LIMIT = 40
LM_EVAL = str(Path(sys.executable).parent / "lm_eval")


def _lm_eval_samples(output: Path) -> dict[int, dict]:
    (path,) = output.rglob("samples_*.jsonl")
    return {row["doc_id"]: row for row in map(json.loads, path.read_text().splitlines())}


def _lm_eval(args: list[str], env: dict, output: Path) -> dict[int, dict]:
    done = subprocess.run(
        [LM_EVAL, *args, "--limit", str(LIMIT), "--batch_size", "8", "--device", "cpu",
         "--log_samples", "--output_path", str(output)],
        env=env, capture_output=True, text=True, timeout=900, cwd=output.parent,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return _lm_eval_samples(output)


def _loglikelihood(row: dict) -> float:
    return float(row["resps"][0][0][0])


def test_arithmetic_2da_matches_plain_lm_eval(env, tmp_path, data_dir):
    done = run_cli(["eval", "--tasks", "arithmetic_2da", "--limit", str(LIMIT), "--batch-size", "8",
                    "--output-dir", str(tmp_path / "out"), "--output", "json"], env)
    assert done.returncode == 0, done.stderr[-3000:]
    record = read_record(Path(json.loads(done.stdout)["record"]))
    (result,) = record.results
    ours = {
        row["doc_id"]: row
        for row in map(json.loads, (Path(json.loads(done.stdout)["record"]).parent / result.samples_file).read_text().splitlines())
    }

    # lm-eval's own arithmetic_2da definition, pointed at the same local file, on the same float weights.
    builtin = Path(lm_eval.__file__).parent / "tasks" / "arithmetic" / "arithmetic_2da.yaml"
    ref_dir = tmp_path / "ref_tasks"
    ref_dir.mkdir()
    (ref_dir / "ref.yaml").write_text(
        f"include: {builtin}\ntask: arithmetic_2da_reference\ntag: []\n"
        f"dataset_kwargs:\n  data_files:\n    validation: {data_dir / 'arithmetic' / 'two_digit_addition.jsonl'}\n"
    )
    folder = float_folder(resolve_model("smollm2-135m-instruct"))
    theirs = _lm_eval(["--model", "hf", "--model_args", f"pretrained={folder},dtype=float32",
                       "--include_path", str(ref_dir), "--tasks", "arithmetic_2da_reference"], env, tmp_path / "plain")

    assert sorted(theirs) == sorted(ours) == list(range(LIMIT))
    for doc_id, row in ours.items():
        assert row["prompt_hash"] == theirs[doc_id]["prompt_hash"]
        assert row["target_hash"] == theirs[doc_id]["target_hash"]
        assert abs(_loglikelihood(row) - _loglikelihood(theirs[doc_id])) <= 1e-4
        assert row["acc"] == theirs[doc_id]["acc"]
    assert result.metrics["acc"].value == sum(r["acc"] for r in theirs.values()) / LIMIT


def test_lm_eval_cli_runs_the_harness_model_type(env, tmp_path):
    via_lm_eval = _lm_eval(["--model", "harness", "--model_args", "model=smollm2-135m-instruct",
                            "--include_path", str(REPO / "tasks"), "--tasks", "arithmetic_2da"], env, tmp_path / "plugin")
    done = run_cli(["eval", "--tasks", "arithmetic_2da", "--limit", str(LIMIT), "--batch-size", "8",
                    "--output-dir", str(tmp_path / "out"), "--output", "json"], env)
    assert done.returncode == 0, done.stderr[-3000:]
    run_dir = Path(json.loads(done.stdout)["record"]).parent
    (result,) = read_record(run_dir).results
    ours = {r["doc_id"]: r for r in map(json.loads, (run_dir / result.samples_file).read_text().splitlines())}
    assert sorted(via_lm_eval) == sorted(ours)
    for doc_id, row in ours.items():
        assert abs(_loglikelihood(row) - _loglikelihood(via_lm_eval[doc_id])) <= 1e-4

"""harness scores exactly as lm-eval does, and lm-eval's own CLI can evaluate harness models.

Each comparison runs lm-eval's built-in task definition (its YAML, included unchanged and pointed at
the same documents through a local JSON-lines file in the hub dataset's schema, written here by
independent code) next to harness's task on the same float weights.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import lm_eval
import pytest

from harness.models import float_folder, resolve_model
from harness.records._schema import read_record
from harness.tasks.index import LIBRARY
from tests.helpers import run_cli

pytestmark = pytest.mark.slow  # harness and lm-eval each evaluate the embedded default

LIMIT = 10  # documents per task, every sample compared; CI runs the whole suite on 2 cores in under 20 minutes
LM_EVAL = str(Path(sys.executable).parent / "lm_eval")
BUILTIN = Path(lm_eval.__file__).parent / "tasks"


def _hub_rows_truthfulqa(data_dir: Path) -> list[dict]:
    rows = json.loads((data_dir / "truthfulqa/data/v0/mc_task.json").read_text())
    return [
        {"question": r["question"], **{k: {"choices": list(r[k]), "labels": list(r[k].values())} for k in ("mc1_targets", "mc2_targets")}}
        for r in rows
    ]


def _hub_rows_mmlu(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return [
            {"question": r["question"], "choices": [r[f"choice{i}"] for i in range(4)], "answer": int(r["answer"])}
            for r in csv.DictReader(f)
        ]


def _hub_rows_mgsm(path: Path) -> list[dict]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        question, answer = line.split("\t")
        rows.append({"question": question, "answer": None, "answer_number": int(answer.replace(",", "")), "equation_solution": None})
    return rows


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _reference_tasks(folder: Path, data_dir: Path) -> dict[str, str]:
    """lm-eval's built-in YAMLs, each pointed at local hub-schema files. Returns ours -> reference name."""
    tqa = _write_jsonl(folder / "tqa.jsonl", _hub_rows_truthfulqa(data_dir))
    mmlu_test = _write_jsonl(folder / "anatomy_test.jsonl", _hub_rows_mmlu(data_dir / "mmlu/test/anatomy_test.csv"))
    mmlu_dev = _write_jsonl(folder / "anatomy_dev.jsonl", _hub_rows_mmlu(data_dir / "mmlu/dev/anatomy_dev.csv"))
    mgsm = _write_jsonl(folder / "mgsm_en.jsonl", _hub_rows_mgsm(data_dir / "multilingual/mgsm/mgsm_en.tsv"))
    xcopa = data_dir / "multilingual/xcopa/data/it"
    specs = {
        "arithmetic_2da": ("arithmetic/arithmetic_2da.yaml", {"validation": data_dir / "arithmetic/two_digit_addition.jsonl"}),
        "truthfulqa_mc1": ("truthfulqa/truthfulqa_mc1.yaml", {"validation": tqa}),
        "truthfulqa_mc2": ("truthfulqa/truthfulqa_mc2.yaml", {"validation": tqa}),
        "mmlu_anatomy": ("mmlu/default/mmlu_anatomy.yaml", {"test": mmlu_test, "dev": mmlu_dev}),
        "xcopa_it": ("xcopa/default_it.yaml", {"validation": xcopa / "val.it.jsonl", "test": xcopa / "test.it.jsonl"}),
        "mgsm_direct_en": ("mgsm/direct/mgsm_direct_en.yaml", {"test": mgsm}),
    }
    names = {}
    for ours, (builtin, files) in specs.items():
        name = f"{ours}_reference"
        data_files = "".join(f"    {split}: {path}\n" for split, path in files.items())
        # The hub's train split (MGSM's few-shot exemplars) is not staged; these runs are zero-shot.
        (folder / f"{name}.yaml").write_text(
            f"include: {BUILTIN / builtin}\ntask: {name}\ntag: []\ndataset_path: json\ndataset_name: null\n"
            f"training_split: null\ndataset_kwargs:\n  data_files:\n{data_files}"
        )
        names[ours] = name
    return names


def _samples_of_lm_eval(output: Path) -> dict[str, dict[int, dict]]:
    found = {}
    for path in output.rglob("samples_*.jsonl"):
        task = path.name[len("samples_") :].rsplit("_", 1)[0]
        found[task] = {row["doc_id"]: row for row in map(json.loads, path.read_text().splitlines())}
    return found


def _run_lm_eval(args: list[str], env: dict, output: Path) -> tuple[dict, dict]:
    done = subprocess.run(
        [LM_EVAL, *args, "--limit", str(LIMIT), "--batch_size", "8", "--device", "cpu", "--log_samples", "--output_path", str(output)],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        cwd=output.parent,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (results,) = output.rglob("results_*.json")
    return json.loads(results.read_text())["results"], _samples_of_lm_eval(output)


def _run_harness(tasks: list[str], env: dict, output: Path, *extra: str):
    done = run_cli(
        [
            "eval",
            "--tasks",
            ",".join(tasks),
            "--limit",
            str(LIMIT),
            "--batch-size",
            "8",
            "--output-dir",
            str(output),
            "--output",
            "json",
            *extra,
        ],
        env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    run_dir = Path(json.loads(done.stdout)["record"]).parent
    record = read_record(run_dir)
    samples = {
        r.task: {row["doc_id"]: row for row in map(json.loads, (run_dir / r.samples_file).read_text().splitlines())}
        for r in record.results
        if r.kind == "task"
    }
    return {r.task: r for r in record.results}, samples


def _leaves(value) -> list:
    return [leaf for item in value for leaf in _leaves(item)] if isinstance(value, list) else [value]


def _same_output(ours, theirs) -> bool:
    """lm-eval's sample logs write responses as strings: log-likelihoods within 1e-4, the rest equal."""
    if isinstance(ours, float):
        return abs(ours - float(theirs)) <= 1e-4
    return str(ours) == str(theirs)


def _assert_same(ours_results, ours_samples, theirs_results, theirs_samples, names):
    for ours, reference in names.items():
        for metric, value in ours_results[ours].metrics.items():
            key = metric if "," in metric else f"{metric},none"
            expected = theirs_results[reference][key]
            assert value.value == pytest.approx(expected, abs=1e-6), (ours, metric)
        assert sorted(ours_samples[ours]) == sorted(theirs_samples[reference]) == list(range(LIMIT))
        for doc_id, row in ours_samples[ours].items():
            theirs = theirs_samples[reference][doc_id]
            assert row["prompt_hash"] == theirs["prompt_hash"], (ours, doc_id)
            assert row["target_hash"] == theirs["target_hash"], (ours, doc_id)
            mine, other = _leaves(row["resps"]), _leaves(theirs["resps"])
            assert len(mine) == len(other), (ours, doc_id)
            for a, b in zip(mine, other, strict=True):
                assert _same_output(a, b), (ours, doc_id, a, b)


@pytest.fixture
def reference(tmp_path, data_dir):
    folder = tmp_path / "reference_tasks"
    folder.mkdir()
    return folder, _reference_tasks(folder, data_dir)


def _plain_lm_eval_args(folder: Path) -> list[str]:
    weights = float_folder(resolve_model("smollm2-135m-instruct"))
    return ["--model", "hf", "--model_args", f"pretrained={weights},dtype=float32", "--include_path", str(folder)]


def test_zero_shot_tasks_match_plain_lm_eval(env, tmp_path, reference):
    folder, names = reference
    ours = _run_harness(list(names), env, tmp_path / "ours")  # also dequantises the GGUF if needed
    theirs = _run_lm_eval([*_plain_lm_eval_args(folder), "--tasks", ",".join(names.values())], env, tmp_path / "plain")
    _assert_same(*ours, *theirs, names)


def test_mmlu_five_shot_matches_plain_lm_eval(env, tmp_path, reference):
    folder, names = reference
    names = {"mmlu_anatomy": names["mmlu_anatomy"]}
    ours = _run_harness(list(names), env, tmp_path / "ours", "--num-fewshot", "5")
    theirs = _run_lm_eval(
        [*_plain_lm_eval_args(folder), "--tasks", ",".join(names.values()), "--num_fewshot", "5"], env, tmp_path / "plain"
    )
    assert ours[0]["mmlu_anatomy"].num_fewshot == 5
    _assert_same(*ours, *theirs, names)


def test_lm_eval_cli_runs_the_harness_model_type(env, tmp_path):
    their_results, theirs = _run_lm_eval(
        [
            "--model",
            "harness",
            "--model_args",
            "model=smollm2-135m-instruct",
            "--include_path",
            str(LIBRARY),
            "--tasks",
            "arithmetic_2da",
        ],
        env,
        tmp_path / "plugin",
    )
    ours = _run_harness(["arithmetic_2da"], env, tmp_path / "ours")
    _assert_same(*ours, their_results, theirs, {"arithmetic_2da": "arithmetic_2da"})

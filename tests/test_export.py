"""`harness export`: every file of the committed wrappers run and of a hand-made run is valid
every_eval_ever 0.2.0 and says what the record says; bad input stops with one line."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from harness._util.files import sha256_text
from harness.cli._main import main
from harness.errors import HarnessError
from harness.records._export import SCHEMA, check, export_run
from harness.records._runs import load_run
from harness.records._schema import (
    BaseIdentity,
    DataFileRecord,
    Environment,
    InterventionRecord,
    MetricValue,
    RunRecord,
    RunSpecRecord,
    TaskResult,
    Timings,
    VariantRecord,
    WrapperRecord,
    write_record,
)

REPO = Path(__file__).resolve().parent.parent
WRAPPERS_RUN = REPO / "results" / "20261128T153000Z-5f064762"
VALIDATOR = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))


def _exported(run_dir: Path, out: Path) -> dict[Path, dict]:
    paths = export_run(run_dir, out)
    assert sorted(paths) == sorted(out.rglob("*.json"))
    documents = {path.relative_to(out): json.loads(path.read_text()) for path in paths}
    for name, document in documents.items():
        assert not list(VALIDATOR.iter_errors(document)), name
    return documents


def _scores(document: dict) -> dict[str, float]:
    return {r["score_details"]["details"]["metric"]: r["score_details"]["score"] for r in document["evaluation_results"]}


def test_schema_is_draft7_and_rejects_what_the_schema_does():
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    minimal = {
        "schema_version": "0.2.0",
        "evaluation_id": "t/m/1",
        "retrieved_timestamp": "1",
        "source_metadata": {"source_type": "evaluation_run", "source_organization_name": "x", "evaluator_relationship": "other"},
        "model_info": {"name": "m", "id": "m"},
        "evaluation_results": [
            {
                "evaluation_name": "t",
                "source_data": {"dataset_name": "t", "source_type": "other"},
                "metric_config": {"lower_is_better": False},
                "score_details": {"score": 0.5},
            }
        ],
    }
    assert VALIDATOR.is_valid(minimal)
    result = minimal["evaluation_results"][0]
    for broken in (
        {**minimal, "eval_library": {"name": "lm_eval", "version": "0.4"}},  # a 0.2.1 field
        {**minimal, "evaluation_results": [{**result, "metric_config": {}}]},
        {**minimal, "evaluation_results": [{**result, "metric_config": {"lower_is_better": True, "score_type": "continuous"}}]},
        {**minimal, "evaluation_results": [{**result, "score_details": {"score": 0.5, "details": {"n": 3}}}]},
    ):
        assert not VALIDATOR.is_valid(broken)
    with pytest.raises(HarnessError, match=r"x\.json: not valid every_eval_ever 0\.2\.0 at evaluation_results/0/metric_config"):
        check({**minimal, "evaluation_results": [{**result, "metric_config": {}}]}, "x.json")


def test_committed_wrappers_run_exports_the_record_values(tmp_path):
    run = load_run(WRAPPERS_RUN)
    documents = _exported(WRAPPERS_RUN, tmp_path)
    variants = {v.identity: v for v in run.record.variants}
    with_values = [r for r in run.record.results if any(m.value is not None for m in r.metrics.values())]
    assert len(documents) == len(with_values) == 195

    for result in with_values:
        variant = variants[result.variant]
        document = documents[Path(variant.identity[:12], f"{result.task}.json")]
        assert document["schema_version"] == "0.2.0"
        assert document["evaluation_id"].startswith(f"{result.task}/{variant.model}/")
        details = document["model_info"]["additional_details"]
        assert (document["model_info"]["id"], details["harness_variant_identity"]) == (variant.model, variant.identity)
        assert sha256_text(details["intervention_record"]) == variant.identity
        assert details["base_identity"] == InterventionRecord(base=variant.intervention.base).identity()
        assert details["cost_weight_bytes"] == str(variant.cost.weight_bytes)
        assert _scores(document) == {k: m.value for k, m in result.metrics.items()}
        for entry in document["evaluation_results"]:
            key = entry["score_details"]["details"]["metric"]
            stderr = result.metrics[key].stderr
            assert entry["score_details"]["details"].get("stderr") == (None if stderr is None else repr(stderr))
            assert entry["metric_config"]["lower_is_better"] is not result.higher_is_better.get(key.split(",")[0], True)
            assert entry["source_data"]["additional_details"]["version"] == result.version
            files = {v for k, v in entry["source_data"]["additional_details"].items() if k.endswith(".sha256")}
            assert files == {f.sha256 for f in result.data_files}
    quantized = documents[Path("d55923d3a69f", "wikitext2_ppl.json")]
    assert quantized["source_metadata"]["evaluator_relationship"] == "first_party"
    assert {e["metric_config"].get("score_type") for e in quantized["evaluation_results"]} == {None}  # perplexities: unbounded


def _hand_made_run(folder: Path) -> Path:
    base = BaseIdentity(weights_sha256="a" * 64, format="safetensors", dtype="float32")
    made = [
        VariantRecord(
            identity=InterventionRecord(base=base).identity(),
            model="org/tiny",
            base_origin="hub:org/tiny@abc",
            base_path="/models/tiny",
            intervention=InterventionRecord(base=base),
            load_seconds=1.0,
            load_converted=False,
        ),
    ]
    wrapped = InterventionRecord(base=base, wrappers=(WrapperRecord(name="quantize", params={"bits": "4"}),))
    made.append(
        VariantRecord(
            identity=wrapped.identity(),
            model="org/tiny+quantize:bits=4",
            base_origin="hub:org/tiny@abc",
            base_path="/models/tiny",
            intervention=wrapped,
            load_seconds=1.0,
            load_converted=False,
        )
    )
    results = []
    for variant, acc in zip(made, (0.5, 0.25), strict=True):
        common = dict(variant=variant.identity, version="1.0", num_fewshot=0, seconds=0.1, requests_computed=4, requests_cached=0)
        results += [
            TaskResult(
                task="quiz",
                kind="task",
                n_samples=4,
                config_hash="c" * 64,
                data_files=(DataFileRecord(split="test", path="quiz.jsonl", origin="data_dir", sha256="d" * 64),),
                metrics={
                    "acc": MetricValue(value=acc, stderr=0.25),
                    "exact_match,strict": MetricValue(value=acc, stderr=None),
                    "f1": MetricValue(value=None, stderr=None),
                },
                higher_is_better={"acc": True, "exact_match": True, "f1": True},
                samples_file=f"samples/{variant.identity[:12]}/quiz.jsonl",
                **common,
            ),
            TaskResult(
                task="quizzes",
                kind="group",
                n_samples=None,
                config_hash=None,
                metrics={"acc": MetricValue(value=acc, stderr=None)},
                higher_is_better={},
                samples_file=None,
                **common,
            ),
            TaskResult(task="empty", kind="group", n_samples=None, config_hash=None, metrics={}, samples_file=None, **common),
        ]
    record = RunRecord(
        run_id="20260101T000000Z-export",
        created_at="2026-01-01T00:00:00+00:00",
        command=("harness", "eval"),
        spec_given={},
        spec=RunSpecRecord(
            models=tuple(v.model for v in made),
            tasks=("quizzes",),
            limit=None,
            num_fewshot=None,
            batch_size=1,
            device="cpu",
            seed=7,
            data_dir=None,
            samples="public",
        ),
        variants=tuple(made),
        results=tuple(results),
        lm_eval={v.identity: {"group_subtasks": {"quizzes": ["quiz"]}} for v in made},
        environment=Environment(
            harness_version="0.1.0",
            git_commit=None,
            git_dirty=None,
            python="3.11",
            packages={},
            platform="test",
            processor="x86_64",
            cpu_count=1,
            memory_gb=None,
            accelerator=None,
            torch_threads=1,
        ),
        timings=Timings(total_seconds=1.0, setup_seconds=0.1),
    )
    write_record(record, folder)
    return folder


def test_hand_made_run_exports_exactly_and_repeatably(tmp_path):
    run_dir = _hand_made_run(tmp_path / "run")
    documents = _exported(run_dir, tmp_path / "out")
    run = load_run(run_dir)
    base, variant = run.record.variants
    assert set(documents) == {Path(v.identity[:12], f"{t}.json") for v in (base, variant) for t in ("quiz", "quizzes")}

    quiz = documents[Path(variant.identity[:12], "quiz.json")]
    assert quiz["evaluation_timestamp"] == quiz["retrieved_timestamp"] == "1767225600.0"
    assert quiz["evaluation_id"] == "quiz/org/tiny+quantize:bits=4/1767225600.0"
    assert quiz["model_info"]["developer"] == "org"
    assert "inference_engine" not in quiz["model_info"]  # the record names no transformers version
    assert _scores(quiz) == {"acc": 0.25, "exact_match,strict": 0.25}  # f1 has no value: left out
    acc, exact = quiz["evaluation_results"]
    assert (acc["evaluation_name"], acc["metric_config"]["evaluation_description"]) == ("quiz", "acc")
    assert (exact["evaluation_name"], exact["metric_config"]["evaluation_description"]) == ("quiz/strict", "exact_match (filter: strict)")
    assert acc["score_details"]["details"]["stderr"] == "0.25" and "stderr" not in exact["score_details"]["details"]
    assert acc["source_data"]["additional_details"] == {
        "kind": "task",
        "version": "1.0",
        "num_fewshot": "0",
        "n_samples": "4",
        "config_hash": "c" * 64,
        "data_file.0.split": "test",
        "data_file.0.path": "quiz.jsonl",
        "data_file.0.origin": "data_dir",
        "data_file.0.sha256": "d" * 64,
    }

    group = documents[Path(base.identity[:12], "quizzes.json")]
    (entry,) = group["evaluation_results"]
    assert entry["metric_config"]["lower_is_better"] is False  # the group has no flag: its task's
    assert entry["source_data"]["additional_details"]["subtasks"] == "quiz"
    assert group["source_metadata"]["evaluator_relationship"] == "third_party"

    first = {p: (tmp_path / "out" / p).read_bytes() for p in documents}
    export_run(run_dir, tmp_path / "out")
    assert {p: (tmp_path / "out" / p).read_bytes() for p in documents} == first


def test_bad_input_is_one_line(tmp_path, capsys):
    with pytest.raises(HarnessError, match="not a run folder"):
        export_run(tmp_path, tmp_path / "out")
    with pytest.raises(HarnessError, match="unknown export format 'csv'"):
        export_run(WRAPPERS_RUN, tmp_path / "out", "csv")
    for args in (
        ["export", str(tmp_path), "--out", str(tmp_path / "out")],
        ["export", str(WRAPPERS_RUN), "--format", "csv", "--out", str(tmp_path / "out")],
    ):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert err.startswith("harness: ") and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_cli_prints_each_file(tmp_path, capsys):
    run_dir = _hand_made_run(tmp_path / "run")
    assert main(["export", str(run_dir), "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out.split()
    assert sorted(printed) == sorted(str(p) for p in (tmp_path / "out").rglob("*.json")) and len(printed) == 4

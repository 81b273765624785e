"""Paired comparison: statistics against hand computations and scipy (cases/compare_stats.json),
a hand-made run whose flips, McNemar counts, agreement and KL are known, the refusals
(cases/compare_refusals.json), and the committed wrappers reference run end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as scipy_stats

from harness.analysis import _stats
from harness.analysis._compare import compare, summarize
from harness.analysis._curves import pareto_front, parse_pareto, sweeps
from harness.cli._main import main
from harness.errors import HarnessError
from harness.records._runs import load_run
from harness.records._schema import (
    BaseIdentity,
    CostRecord,
    DataFileRecord,
    Environment,
    InterventionRecord,
    MetricValue,
    RunRecord,
    RunSpecRecord,
    ScorerRecord,
    TaskResult,
    Timings,
    VariantRecord,
    WrapperRecord,
    write_record,
)

CASES = Path(__file__).parent / "cases"
STATS = json.loads((CASES / "compare_stats.json").read_text())["cases"]
REFUSALS = json.loads((CASES / "compare_refusals.json").read_text())["cases"]
REPO = Path(__file__).resolve().parent.parent
WRAPPERS_RUN = REPO / "results" / "20261128T153000Z-5f064762"


@pytest.mark.parametrize("case", STATS, ids=[c["name"] for c in STATS])
def test_stats_case(case):
    kind = case["kind"]
    if kind == "mcnemar":
        b, c = case["negative"], case["positive"]
        result = _stats.mcnemar(b, c)
        assert result.exact_p == pytest.approx(case["exact_p"], rel=1e-12)
        assert result.chi2 == pytest.approx(case["chi2"], rel=1e-12)
        if b + c:
            assert result.exact_p == pytest.approx(scipy_stats.binomtest(b, b + c, 0.5).pvalue, rel=1e-9)
            assert result.chi2_p == pytest.approx(scipy_stats.chi2.sf(result.chi2, 1), rel=1e-9)
    elif kind == "flips":
        right = 1 if case["higher_is_better"] else 0
        base, variant = np.array(case["base"]), np.array(case["variant"])
        result = _stats.flips(base == right, variant == right)
        fields = ("negative", "positive", "variant_errors", "negative_flip_rate", "positive_flip_rate", "negative_flip_impact")
        for field in fields:
            assert getattr(result, field) == pytest.approx(case[field]), field
    elif kind == "kl":
        assert _stats.choice_kl(np.array(case["base"]), np.array(case["variant"])) == pytest.approx(case["kl"], abs=1e-12)
    elif kind == "aggregate":
        values = np.array(case["values"], dtype=float)
        assert float(_stats.aggregate_for(case["metric"])(values)) == pytest.approx(case["expected"], rel=1e-12)
    elif kind == "bootstrap":
        half = np.random.default_rng(case["noise_seed"]).normal(0, case["noise"], case["n"] // 2)
        base = np.random.default_rng(case["noise_seed"] + 1).uniform(0, 1, case["n"])
        variant = base + case["shift"] + np.concatenate([half, -half])
        low, high = _bootstrap(case, base, variant)
        assert float(np.mean(variant - base)) == pytest.approx(case["shift"])
        assert 0 < low < case["shift"] < high
        expected_width = 2 * 1.96 * np.std(variant - base) / math.sqrt(case["n"])
        assert high - low == pytest.approx(expected_width, rel=0.15)
        assert (low, high) == _bootstrap(case, base, variant)  # seeded: the same interval again
    elif kind == "coverage":
        draws = np.random.default_rng(case["seed"])
        covered = 0
        for _ in range(case["repeats"]):
            base = draws.uniform(0, 1, case["n"])
            variant = base + case["shift"] + draws.normal(0, case["noise"], case["n"])
            low, high = _bootstrap(case, base, variant)
            covered += low < case["shift"] < high
        assert covered / case["repeats"] >= case["min_coverage"]
    elif kind == "bootstrap_flips":
        n, negative, positive = case["n"], case["negative"], case["positive"]
        base = np.array([1] * negative + [0] * positive + [1] * (n - negative - positive), dtype=float)
        variant = np.array([0] * negative + [1] * positive + [1] * (n - negative - positive), dtype=float)
        low, high = _bootstrap(case, base, variant)
        difference = (positive - negative) / n
        assert low < difference < high < 0
        sd = math.sqrt((negative + positive) / n - difference**2)
        assert high - low == pytest.approx(2 * 1.96 * sd / math.sqrt(n), rel=0.15)
    elif kind == "pareto":
        points = [tuple(p) for p in case["points"]]
        assert pareto_front(points, case["a_higher"], case["b_higher"]) == case["on_front"]
    else:
        raise AssertionError(f"unknown case kind {kind}")


def _bootstrap(case, base, variant):
    rng = np.random.default_rng(case["seed"])
    return _stats.bootstrap_interval(base, variant, _stats.aggregate_for("acc"), case["resamples"], rng, case["confidence"])


# --- a hand-made run -------------------------------------------------------------------------------

# quiz_a: document -> (base's choice, variant's choice); choice 0 is right. Base right on 0 1 2 5 7,
# variant on 0 2 3 7: negative flips 1 and 5, positive flip 3, variant errors 1 4 5 6; the two agree
# on 0 2 4 6 7. quiz_b: both right on both documents.
QUIZ_A = {0: (0, 0), 1: (0, 2), 2: (0, 0), 3: (1, 0), 4: (1, 1), 5: (0, 1), 6: (2, 2), 7: (0, 0)}
QUIZ_B = {0: (0, 0), 1: (0, 0)}
# A chosen answer has log-likelihood -1, the two others -2: where the choices differ,
# KL = (a - b) ln(a / b) = a - b with a = 1 / (1 + 2/e), b = (1 - a) / 2.
A = 1 / (1 + 2 / math.e)
KL_DISAGREE = A - (1 - A) / 2
GEN = {  # document -> (base output, variant output, exact match base/variant, toxic base/variant)
    0: ("4", "4", (1, 1), (1, 0)),
    1: ("7", "8", (1, 0), (0, 0)),
    2: ("x", "x", (0, 0), (1, 1)),
    3: ("10", "11", (1, 0), (0, 1)),
}
PPL = {0: ((-10.0, 5), (-12.0, 5)), 1: ((-20.0, 5), (-20.0, 5))}
HIGHER = {"acc": True, "exact_match": True, "toxicity_probability": False, "word_perplexity": False}


def _choices(chosen: int) -> list:
    return [[-1.0 if i == chosen else -2.0, False] for i in range(3)]


def _sample_rows(task: str, side: int) -> list[dict]:
    """Sample-log lines of `task` for the base (side 0) or the variant (side 1)."""
    rows = []
    if task in ("quiz_a", "quiz_b"):
        for doc, chosen in (QUIZ_A if task == "quiz_a" else QUIZ_B).items():
            rows.append({"doc_id": doc, "filtered_resps": _choices(chosen[side]), "metrics": ["acc"], "acc": float(chosen[side] == 0)})
    elif task == "gen":
        for doc, (base, variant, match, toxic) in GEN.items():
            rows.append(
                {
                    "doc_id": doc,
                    "filtered_resps": [(base, variant)[side]],
                    "metrics": ["exact_match", "toxicity_probability"],
                    "exact_match": float(match[side]),
                    "toxicity_probability": float(toxic[side]),
                }
            )
    else:
        for doc, pairs in PPL.items():
            rows.append(
                {"doc_id": doc, "filtered_resps": [pairs[side][0]], "metrics": ["word_perplexity"], "word_perplexity": list(pairs[side])}
            )
    for row in rows:
        row.update(filter="none", doc_hash=f"{task}-doc{row['doc_id']}", prompt_hash="p", target_hash="t")
    return rows


def _aggregate(rows: list[dict], metric: str) -> float:
    return float(_stats.aggregate_for(metric)(np.array([r[metric] for r in rows], dtype=float)))


def _variant(model: str, wrappers: tuple, weight_mb: float) -> VariantRecord:
    base = BaseIdentity(weights_sha256="a" * 64, format="gguf", dtype="float32")
    intervention = InterventionRecord(base=base, wrappers=tuple(WrapperRecord(name=n, params=p) for n, p in wrappers))
    return VariantRecord(
        identity=intervention.identity(),
        model=model,
        base_origin="local",
        base_path="/models/tiny",
        intervention=intervention,
        load_seconds=1.5,
        load_converted=False,
        cost=CostRecord(parameters=1_000_000, weight_bytes=int(weight_mb * 1e6), flops_per_token=2e6),
    )


def write_synthetic_run(
    folder: Path,
    name: str = "tiny",
    run_id: str = "20260101T000000Z-synthetic",
    variants: tuple[str, ...] = ("base", "bits=4", "bits=8"),
    change: dict | None = None,
) -> Path:
    """A run of a base `name` and its quantize:bits=4 (the hand-made answers above) and bits=8
    (the base's answers) variants on quiz_a, quiz_b (group quizzes), gen and ppl; `change` alters
    the bits=4 variant's quiz_a result as compare_refusals.json describes."""
    change = change or {}
    made = {
        "base": (_variant(name, (), 100.0), 0),
        "bits=4": (_variant(f"{name}+quantize:bits=4", (("quantize", {"bits": "4", "group": "64"}),), 30.0), 1),
        "bits=8": (_variant(f"{name}+quantize:bits=8", (("quantize", {"bits": "8", "group": "64"}),), 55.0), 0),
    }
    chosen = [made[v] for v in variants]
    results = []
    for variant, side in chosen:
        changed = variant.model.endswith("bits=4")
        pooled = []
        for task in ("quiz_a", "quiz_b", "gen", "ppl"):
            rows = _sample_rows(task, side)
            tamper = changed and task == "quiz_a"
            if tamper and "doc_hash" in change:
                rows[change["doc_hash"]]["doc_hash"] = "f" * 64
            samples_file = f"samples/{variant.identity[:12]}/{task}.jsonl"
            (folder / samples_file).parent.mkdir(parents=True, exist_ok=True)
            (folder / samples_file).write_text("".join(json.dumps(r) + "\n" for r in rows))
            pooled += rows if task.startswith("quiz") else []
            metrics = {
                m: MetricValue(value=_aggregate(rows, m), stderr=None if m == "word_perplexity" else 0.1) for m in rows[0]["metrics"]
            }
            scorer = change.get("scorer", "jigsaw-bilstm") if tamper else "jigsaw-bilstm"
            results.append(
                TaskResult(
                    variant=variant.identity,
                    task=task,
                    kind="task",
                    version=change.get("version", "1.0") if tamper else "1.0",
                    num_fewshot=change.get("num_fewshot", 0) if tamper else 0,
                    n_samples=len(rows),
                    config_hash="c" * 64,
                    data_files=(
                        DataFileRecord(
                            split="test",
                            path=f"{task}.jsonl",
                            origin="data_dir",
                            sha256=change.get("data_sha256", "d") * 64 if tamper else "d" * 64,
                        ),
                    ),
                    metrics=metrics,
                    higher_is_better={m: HIGHER[m] for m in metrics},
                    samples_file=samples_file,
                    seconds=0.5,
                    requests_computed=len(rows),
                    requests_cached=0,
                    scorer=ScorerRecord(name=scorer, version="test 1.0", weights_sha256="f" * 64),
                )
            )
        results.append(
            TaskResult(
                variant=variant.identity,
                task="quizzes",
                kind="group",
                version="1.0",
                num_fewshot=0,
                n_samples=None,
                config_hash=None,
                metrics={"acc": MetricValue(value=_aggregate(pooled, "acc"), stderr=0.1)},
                higher_is_better={"acc": True},
                samples_file=None,
                seconds=None,
                requests_computed=None,
                requests_cached=None,
            )
        )
    record = RunRecord(
        run_id=run_id,
        created_at="2026-01-01T00:00:00+00:00",
        command=("harness", "eval", "--model", f"{name}+quantize:bits=4|8", "--tasks", "quizzes,gen,ppl"),
        spec_given={"model": [f"{name}+quantize:bits=4|8"], "tasks": "quizzes,gen,ppl"},
        spec=RunSpecRecord(
            models=tuple(v.model for v, _ in chosen),
            tasks=("quizzes", "gen", "ppl"),
            limit=None,
            num_fewshot=None,
            batch_size=8,
            device="cpu",
            seed=1234,
            data_dir=None,
            samples="public",
        ),
        variants=tuple(v for v, _ in chosen),
        results=tuple(results),
        lm_eval={v.identity: {"group_subtasks": {"quizzes": ["quiz_a", "quiz_b"]}} for v, _ in chosen},
        environment=Environment(
            harness_version="0.1.0",
            git_commit="0" * 40,
            git_dirty=False,
            python="3.11",
            packages={"lm_eval": "0.4.13"},
            platform="test",
            processor="x86_64",
            cpu_count=2,
            memory_gb=8.0,
            accelerator=None,
            torch_threads=2,
        ),
        timings=Timings(total_seconds=12.0, setup_seconds=2.0),
    )
    write_record(record, folder)
    return folder


def _by_task(comparison, model="tiny+quantize:bits=4"):
    return {t.task: t for t in comparison.tasks if t.variant_model == model}


def test_hand_made_run_gives_the_hand_computed_comparison(tmp_path):
    comparison = compare([load_run(write_synthetic_run(tmp_path / "run"))])
    tasks = _by_task(comparison)
    assert set(tasks) == {"quiz_a", "quiz_b", "gen", "ppl", "quizzes"}

    quiz = tasks["quiz_a"]
    (acc,) = quiz.metrics
    assert (quiz.output, quiz.n, acc.base, acc.variant, acc.difference) == ("multiple_choice", 8, 5 / 8, 4 / 8, -1 / 8)
    assert (acc.flips.negative, acc.flips.positive, acc.flips.variant_errors) == (2, 1, 4)
    assert (acc.flips.negative_flip_rate, acc.flips.positive_flip_rate, acc.flips.negative_flip_impact) == (0.25, 0.125, 0.5)
    assert acc.mcnemar.exact_p == pytest.approx(scipy_stats.binomtest(2, 3, 0.5).pvalue)
    assert acc.interval[0] <= acc.difference <= acc.interval[1]
    assert quiz.agreement == 5 / 8
    assert quiz.mean_kl == pytest.approx(3 * KL_DISAGREE / 8, abs=1e-12)

    group = tasks["quizzes"]  # both quizzes' documents pooled: the size-weighted mean
    (acc,) = group.metrics
    assert (group.kind, group.n, acc.base, acc.variant, acc.flips.negative_flip_rate) == ("group", 10, 0.7, 0.6, 0.2)
    assert group.agreement == 0.7 and group.mean_kl == pytest.approx(3 * KL_DISAGREE / 10, abs=1e-12)

    gen = tasks["gen"]
    match, toxic = gen.metrics
    assert (gen.output, gen.identical, gen.agreement, gen.mean_kl) == ("generate", 0.5, None, None)
    assert (match.difference, match.flips.negative, match.flips.positive) == (-0.5, 2, 0)
    # lower is better: "right" is a prompt without a toxic continuation
    assert (toxic.higher_is_better, toxic.difference, toxic.flips.negative, toxic.flips.positive) == (False, 0.0, 1, 1)

    ppl = tasks["ppl"]
    (word,) = ppl.metrics
    assert ppl.output == "rolling" and word.flips is None and word.mcnemar is None
    assert (word.base, word.variant) == (pytest.approx(math.exp(3.0)), pytest.approx(math.exp(3.2)))

    same = _by_task(comparison, "tiny+quantize:bits=8")["quiz_a"]  # the base's own answers
    assert same.agreement == 1.0 and same.mean_kl == 0.0 and same.metrics[0].interval == (0.0, 0.0)
    assert comparison.seed == 1234 and comparison.resamples == 1000


def test_a_variant_pairs_with_its_base_from_another_run(tmp_path):
    base_run = write_synthetic_run(tmp_path / "a", run_id="20260101T000000Z-base", variants=("base",))
    variant_run = write_synthetic_run(tmp_path / "b", run_id="20260101T000001Z-variant", variants=("bits=4",))
    alone = compare([load_run(variant_run)])
    assert alone.tasks == () and alone.unpaired == ("tiny+quantize:bits=4",)
    joined = _by_task(compare([load_run(variant_run), load_run(base_run)]))
    assert joined["quiz_a"].base_run == "20260101T000000Z-base" and joined["quiz_a"].variant_run == "20260101T000001Z-variant"
    assert joined["quiz_a"].metrics[0].flips.negative == 2


def test_the_bootstrap_is_seeded_and_recorded(tmp_path):
    run = load_run(write_synthetic_run(tmp_path / "run"))
    first, again = compare([run], seed=7, resamples=300), compare([run], seed=7, resamples=300)
    other = compare([run], seed=8, resamples=300)

    def intervals(comparison):
        return [m.interval for t in comparison.tasks for m in t.metrics]

    assert intervals(first) == intervals(again) != intervals(other)
    assert (first.seed, first.resamples) == (7, 300)


@pytest.mark.parametrize("case", REFUSALS, ids=[c["name"] for c in REFUSALS])
def test_refuses_to_pair(tmp_path, case):
    run = load_run(write_synthetic_run(tmp_path / "run", change=case["change"]))
    with pytest.raises(HarnessError) as raised:
        compare([run])
    assert str(raised.value) == case["error"]


def test_refusal_on_the_command_line_is_one_line_and_status_2(tmp_path, capsys):
    run = write_synthetic_run(tmp_path / "run", change={"version": "2.0"})
    assert main(["compare", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("harness: cannot pair tiny+quantize:bits=4")
    assert main(["compare", str(tmp_path / "nothing")]) == 2
    assert "is not a run folder" in capsys.readouterr().err


def test_committed_wrappers_run_end_to_end(capsys):
    summary = summarize([WRAPPERS_RUN], pareto=["arithmetic/acc,cost/weight_mb"])
    run = load_run(WRAPPERS_RUN)
    tasks = summary.comparison.tasks
    assert len({t.variant for t in tasks}) == 14 and summary.comparison.unpaired == ()
    # Recomputed from the sample logs, every paired value is the record's own (all documents paired).
    for t in tasks:
        for m in t.metrics:
            assert m.base == pytest.approx(run.results[(t.base, t.task)].metrics[m.metric].value, rel=1e-9)
            assert m.variant == pytest.approx(run.results[(t.variant, t.task)].metrics[m.metric].value, rel=1e-9)
    bits8 = {t.task: t for t in tasks if t.variant_model.endswith("quantize:bits=8")}
    assert bits8["truthfulqa_mc1"].output == "multiple_choice" and bits8["truthfulqa_mc1"].agreement == 1.0
    assert bits8["arithmetic"].kind == "group" and bits8["arithmetic"].n == 1000

    by_title = {s.title: s for s in summary.sweeps}
    exit_sweep = by_title["exit: layer"]
    assert [p.value for p in exit_sweep.points] == ["10", "15", "20", "25"]
    assert [p.value for p in by_title["quantize: bits (budget=none, score=taylor)"].points] == ["3", "4", "8"]
    assert {"quantize: budget (bits=3/4/8, score=taylor)", "skip: layers"} <= set(by_title)
    (front,) = summary.fronts
    on_front = {p.model.partition("+")[2] for p in front.points if p.on_front}
    assert "quantize:bits=8" in on_front and "" not in on_front  # bits=8 keeps the base's accuracy at 42% of its size

    assert main(["compare", str(WRAPPERS_RUN), "--output", "json", "--resamples", "200"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["comparison"]["resamples"] == 200 and len(payload["sweeps"]) == len(summary.sweeps)
    assert main(["compare", str(WRAPPERS_RUN), "--pareto", "acc,weight_mb"]) == 2
    assert "metric 'acc' is reported by arithmetic, truthfulqa_mc1: name one as TASK/acc" in capsys.readouterr().err
    assert main(["compare", str(WRAPPERS_RUN), "--resamples", "100"]) == 0
    table = capsys.readouterr().out
    assert "+exit:layer=10" in table and "sweep exit: layer" in table and "subtask comparisons not shown" in table


def test_pareto_axes_resolve_with_commas_in_metric_names():
    run = load_run(REPO / "results" / "20261128T044743Z-27e4ee26")
    a, b = parse_pareto(run, "mgsm_direct/exact_match,flexible-extract,xcopa/acc")
    assert (a.task, a.metric, b.task, b.metric) == ("mgsm_direct", "exact_match,flexible-extract", "xcopa", "acc")
    with pytest.raises(HarnessError, match="no metric 'xcopa/accc'"):
        parse_pareto(run, "xcopa/accc,cost/weight_mb")
    assert sweeps(run) == []

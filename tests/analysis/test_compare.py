"""Paired comparison: a hand-made run whose flips, McNemar counts, agreement and KL are known, the
refusals (cases/compare_refusals.json), and the committed wrappers reference run end to end."""

from __future__ import annotations

import json
import math

import pytest
from scipy import stats as scipy_stats

from harness.analysis._compare import compare, summarize
from harness.cli._main import main
from harness.errors import HarnessError
from harness.records._runs import load_run
from tests.helpers import KL_DISAGREE, REPO, read_cases, write_synthetic_run

REFUSALS = read_cases("compare_refusals.json")["cases"]
WRAPPERS_RUN = REPO / "results" / "20261128T153000Z-5f064762"


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

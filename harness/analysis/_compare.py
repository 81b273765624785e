"""Paired comparison of each variant with its base: on the same documents, what changed, and is it real.

Each variant (a model with wrappers) is joined with its base (the same base identity, no wrappers:
from the same run when it is there, else from another run given) per task and per document, on
lm-eval's `doc_id` and filter, the document hash confirming that both saw the same document. Per
task and metric it reports the difference with a paired bootstrap interval; for metrics whose
per-document values are 0/1, McNemar's test and the flip rates; for multiple-choice log-likelihood
tasks the agreement of the chosen answer and the KL divergence of the choice distributions; for
generation tasks the share of identical outputs. Groups are compared on their tasks' documents
pooled (every harness group is a size-weighted mean, which pooling reproduces).

Two results are paired only when their task versions, data files, few-shot settings and scorers
agree; anything else is refused in one line, since its difference would not be the intervention's.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from harness._util.files import sha256_text
from harness.analysis import _curves, _stats
from harness.analysis._defaults import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, check_bootstrap
from harness.errors import HarnessError
from harness.records._runs import Row, RowKey, Run, load_run, read_rows
from harness.records._schema import InterventionRecord, TaskResult, VariantRecord
from harness.spec._options import DEFAULT_SEED

Output = Literal["multiple_choice", "loglikelihood", "rolling", "generate", "mixed"]


def short_name(model: str) -> str:
    """A model string without its base: `+quantize:bits=4` (a base keeps its name)."""
    base, plus, rest = model.partition("+")
    return f"+{rest}" if plus else base


def _output_of(response: Any) -> Output:
    if isinstance(response, list) and len(response) == 1 and isinstance(response[0], int | float):
        return "rolling"
    if (
        isinstance(response, list)
        and response
        and all(isinstance(c, list) and len(c) == 2 and isinstance(c[0], int | float) and isinstance(c[1], bool) for c in response)
    ):
        return "multiple_choice" if len(response) > 1 else "loglikelihood"
    return "generate"


def _as_array(values: list[Any]) -> np.ndarray | None:
    """Per-document values as floats (n,) or (log-likelihood, weight) pairs (n, 2); None when
    they are neither (a metric without per-document numbers)."""
    if all(isinstance(v, int | float) for v in values):
        return np.asarray(values, dtype=float)
    if all(isinstance(v, list) and len(v) == 2 and all(isinstance(x, int | float) for x in v) for v in values):
        return np.asarray(values, dtype=float).reshape(len(values), 2)
    return None


@dataclass(frozen=True)
class MetricComparison:
    metric: str
    higher_is_better: bool | None
    base: float
    """The base's value on the paired documents (equal to its record value when all are paired)."""
    variant: float
    difference: float
    """variant - base."""
    interval: tuple[float, float]
    """Paired bootstrap percentile interval of the difference."""
    mcnemar: _stats.McNemar | None
    """For metrics whose per-document values are all 0 or 1 (accuracy-type)."""
    flips: _stats.Flips | None
    """Same condition; "right" is 1 when higher is better, 0 when lower is (a toxic prompt)."""


@dataclass(frozen=True)
class TaskComparison:
    variant: str
    variant_model: str
    variant_run: str
    base: str
    base_model: str
    base_run: str
    task: str
    kind: Literal["task", "group"]
    output: Output
    headline: bool
    """A top-level result of the run (a group, or a task in no group with metrics)."""
    n: int
    """Paired documents (document x filter entries)."""
    metrics: tuple[MetricComparison, ...]
    agreement: float | None
    """Share of documents where both choose the same answer (multiple-choice log-likelihood tasks)."""
    mean_kl: float | None
    """Mean over documents of KL(base || variant) of the softmax over choice log-likelihoods, nats."""
    identical: float | None
    """Share of documents with identical outputs (generation tasks)."""


@dataclass(frozen=True)
class Comparison:
    runs: tuple[str, ...]
    seed: int
    """Each task's bootstrap draws come from numpy's PCG64 seeded with (seed, a hash of base,
    variant and task), so a comparison does not depend on what else was compared."""
    resamples: int
    confidence: float
    tasks: tuple[TaskComparison, ...]
    unpaired: tuple[str, ...]
    """Variants whose base is in none of the runs given."""


def _check_pairable(task: str, v_model: str, b_model: str, v: TaskResult, b: TaskResult) -> None:
    def data(result: TaskResult) -> str:
        return ", ".join(sorted(f"{f.split} {f.sha256[:12]}" for f in result.data_files)) or "none"

    def scorer(result: TaskResult) -> str | None:
        return None if result.scorer is None else f"{result.scorer.name} {result.scorer.weights_sha256[:12]}"

    for what, get in (
        ("task versions", lambda r: r.version),
        ("data hashes", data),
        ("few-shot settings", lambda r: r.num_fewshot),
        ("scorers", scorer),
    ):
        if get(v) != get(b):
            raise HarnessError(f"cannot pair {v_model} with its base {b_model} on {task}: {what} differ ({get(v)} vs {get(b)})")


def _task_seed(seed: int, base: str, variant: str, task: str) -> list[int]:
    return [seed, int(sha256_text(f"{base}|{variant}|{task}")[:15], 16)]


def _compare_metric(
    metric: str,
    higher_is_better: bool | None,
    base: np.ndarray,
    variant: np.ndarray,
    rng_seed: list[int],
    resamples: int,
    confidence: float,
) -> MetricComparison:
    aggregate = _stats.aggregate_for(metric)
    base_value, variant_value = float(aggregate(base)), float(aggregate(variant))
    interval = _stats.bootstrap_interval(base, variant, aggregate, resamples, np.random.default_rng(rng_seed), confidence)
    binary = base.ndim == 1 and bool(np.isin(base, (0, 1)).all() and np.isin(variant, (0, 1)).all())
    flips = mcnemar = None
    if binary:
        right = 0 if higher_is_better is False else 1
        flips = _stats.flips(base == right, variant == right)
        mcnemar = _stats.mcnemar(flips.negative, flips.positive)
    return MetricComparison(
        metric=metric,
        higher_is_better=higher_is_better,
        base=base_value,
        variant=variant_value,
        difference=variant_value - base_value,
        interval=interval,
        mcnemar=mcnemar,
        flips=flips,
    )


def _compare_rows(
    task: str,
    kind: Literal["task", "group"],
    pair: tuple[tuple[Run, VariantRecord], tuple[Run, VariantRecord]],
    rows: tuple[dict[RowKey, Row], dict[RowKey, Row]],
    results: tuple[TaskResult, TaskResult],
    seed: int,
    resamples: int,
    confidence: float,
) -> TaskComparison:
    (v_run, variant), (b_run, base) = pair
    v_rows, b_rows = rows
    v_result, b_result = results
    keys = sorted(v_rows.keys() & b_rows.keys())
    if not keys:
        raise HarnessError(f"{variant.model} and its base {base.model} share no documents of {task}")
    for key in keys:
        if v_rows[key].doc_hash != b_rows[key].doc_hash:
            raise HarnessError(
                f"cannot pair {variant.model} with its base {base.model} on {key[0]}:"
                f" document {key[1]} differs"
                f" (document hashes {str(b_rows[key].doc_hash)[:12]} vs {str(v_rows[key].doc_hash)[:12]})"
            )
    rng_seed = _task_seed(seed, base.identity, variant.identity, task)
    metrics = []
    for metric in v_result.metrics:
        if metric not in b_result.metrics:
            continue
        b_values = _as_array([b_rows[k].values.get(metric) for k in keys])
        v_values = _as_array([v_rows[k].values.get(metric) for k in keys])
        if b_values is None or v_values is None or b_values.shape != v_values.shape:
            continue
        better = v_result.higher_is_better
        metrics.append(
            _compare_metric(
                metric,
                _stats.direction(metric, better.get(metric, better.get(metric.split(",")[0]))),
                b_values,
                v_values,
                rng_seed,
                resamples,
                confidence,
            )
        )
    outputs = {_output_of(b_rows[k].response) for k in keys}
    output: Output = outputs.pop() if len(outputs) == 1 else "mixed"
    agreement = mean_kl = identical = None
    if output == "multiple_choice":
        chosen, divergences = [], []
        for k in keys:
            b_ll = [c[0] for c in b_rows[k].response]
            v_ll = [c[0] for c in v_rows[k].response]
            chosen.append(int(np.argmax(b_ll)) == int(np.argmax(v_ll)))
            divergences.append(_stats.choice_kl(np.asarray(b_ll), np.asarray(v_ll)))
        agreement, mean_kl = float(np.mean(chosen)), float(np.mean(divergences))
    elif output == "generate":
        identical = float(np.mean([v_rows[k].response == b_rows[k].response for k in keys]))
    return TaskComparison(
        variant=variant.identity,
        variant_model=variant.model,
        variant_run=v_run.record.run_id,
        base=base.identity,
        base_model=base.model,
        base_run=b_run.record.run_id,
        task=task,
        kind=kind,
        headline=task in v_run.headline_tasks,
        output=output,
        n=len(keys),
        metrics=tuple(metrics),
        agreement=agreement,
        mean_kl=mean_kl,
        identical=identical,
    )


def _find_base(variant: VariantRecord, own: Run, runs: Sequence[Run]) -> tuple[Run, VariantRecord] | None:
    identity = InterventionRecord(base=variant.intervention.base).identity()
    for run in (own, *(r for r in runs if r is not own)):
        for candidate in run.record.variants:
            if candidate.identity == identity:
                return run, candidate
    return None


def _pairs(runs: Sequence[Run]) -> tuple[list[tuple[tuple[Run, VariantRecord], tuple[Run, VariantRecord]]], list[str]]:
    pairs, unpaired = [], []
    for run in runs:
        for variant in run.record.variants:
            if not variant.intervention.wrappers:
                continue
            found = _find_base(variant, run, runs)
            if found is None:
                unpaired.append(variant.model)
            else:
                pairs.append(((run, variant), found))
    return pairs, unpaired


def compare(
    runs: Sequence[Run], seed: int = DEFAULT_SEED, resamples: int = DEFAULT_RESAMPLES, confidence: float = DEFAULT_CONFIDENCE
) -> Comparison:
    """Every variant of `runs` against its base, on every task and group both were evaluated on."""
    check_bootstrap(seed, resamples, confidence)
    runs = list({r.record.run_id: r for r in runs}.values())
    pairs, unpaired = _pairs(runs)
    # Every pairing is checked before anything is computed: a refusal leaves no partial answer.
    for (v_run, variant), (b_run, base) in pairs:
        for (identity, task), v_result in v_run.results.items():
            b_result = b_run.results.get((base.identity, task))
            if identity == variant.identity and b_result is not None:
                _check_pairable(task, variant.model, base.model, v_result, b_result)
    compared = []
    for pair in pairs:
        (v_run, variant), (b_run, base) = pair
        leaf_rows: tuple[dict[RowKey, Row], dict[RowKey, Row]] = ({}, {})
        for task in _common_tasks(v_run, variant, b_run, base, kind="task"):
            v_result, b_result = v_run.results[(variant.identity, task)], b_run.results[(base.identity, task)]
            rows = (read_rows(v_run, v_result), read_rows(b_run, b_result))
            leaf_rows[0].update(rows[0])
            leaf_rows[1].update(rows[1])
            compared.append(_compare_rows(task, "task", pair, rows, (v_result, b_result), seed, resamples, confidence))
        for group in _common_tasks(v_run, variant, b_run, base, kind="group"):
            leaves = set(v_run.leaves(group))
            v_rows, b_rows = ({k: r for k, r in side.items() if k[0] in leaves} for side in leaf_rows)
            rows = (v_rows, b_rows)
            results = (v_run.results[(variant.identity, group)], b_run.results[(base.identity, group)])
            if results[0].metrics and rows[0] and rows[1]:
                compared.append(_compare_rows(group, "group", pair, rows, results, seed, resamples, confidence))
    return Comparison(
        runs=tuple(r.record.run_id for r in runs),
        seed=seed,
        resamples=resamples,
        confidence=confidence,
        tasks=tuple(compared),
        unpaired=tuple(unpaired),
    )


def _common_tasks(v_run: Run, variant: VariantRecord, b_run: Run, base: VariantRecord, kind: str) -> list[str]:
    return [
        r.task
        for r in v_run.record.results
        if r.variant == variant.identity and r.kind == kind and (base.identity, r.task) in b_run.results
    ]


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: they become None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def to_json(value: Any) -> Any:
    """A comparison (or any of its parts, curves and fronts included) as plain JSON values."""
    return _finite(asdict(value) if hasattr(value, "__dataclass_fields__") else value)


def number(value: float | None, digits: int = 4) -> str:
    """A value for a table: `digits` decimals in the usual range, fewer for hundreds and more,
    scientific notation beyond 1e5 and below 10^-digits."""
    if value is None:
        return "-"
    if not math.isfinite(value):
        return str(value)
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 10**-digits):
        return f"{value:.3g}"
    return f"{value:.{min(2, digits) if abs(value) >= 100 else digits}f}"


def signed(value: float, digits: int = 4) -> str:
    text = number(value, digits)
    return text if text.startswith("-") or not math.isfinite(value) else f"+{text}"


def table_rows(tasks: Iterable[TaskComparison]) -> list[dict[str, str]]:
    """One row per task and metric, as text: what `harness compare` and the report print."""
    rows = []
    for t in tasks:
        for index, m in enumerate(t.metrics):
            first = index == 0
            rows.append(
                {
                    "variant": short_name(t.variant_model),
                    "task": t.task,
                    "metric": m.metric,
                    "n": str(t.n),
                    "base": number(m.base),
                    "variant value": number(m.variant),
                    "difference [CI]": f"{signed(m.difference)} [{signed(m.interval[0])}, {signed(m.interval[1])}]",
                    "McNemar p": number(m.mcnemar.exact_p, 3) if m.mcnemar else "",
                    "NFR": number(m.flips.negative_flip_rate, 3) if m.flips else "",
                    "PFR": number(m.flips.positive_flip_rate, 3) if m.flips else "",
                    "NFI": number(m.flips.negative_flip_impact, 3) if m.flips else "",
                    "agree": number(t.agreement, 3) if first and t.agreement is not None else "",
                    "KL": number(t.mean_kl, 4) if first and t.mean_kl is not None else "",
                    "same out": number(t.identical, 3) if first and t.identical is not None else "",
                }
            )
    return rows


@dataclass(frozen=True)
class Summary:
    """What `harness compare` answers: the paired comparison, each sweep's curves, the fronts asked for."""

    comparison: Comparison
    sweeps: tuple[_curves.Sweep, ...]
    fronts: tuple[_curves.Front, ...]

    def table(self, subtasks: bool = False) -> str:
        """What `harness compare` prints (`subtasks`: the tasks inside groups too)."""
        return format_table(self, subtasks)

    def to_json(self) -> Any:
        """What `harness compare --output json` prints, as plain JSON values."""
        return to_json(self)


def summarize(
    paths: Sequence[str | Path | Run],
    seed: int = DEFAULT_SEED,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    pareto: Sequence[str] = (),
) -> Summary:
    check_bootstrap(seed, resamples, confidence)
    runs = [p if isinstance(p, Run) else load_run(p) for p in paths]
    axes = [(run, _curves.parse_pareto(run, text)) for run in runs for text in pareto]
    return Summary(
        comparison=compare(runs, seed, resamples, confidence),
        sweeps=tuple(s for run in runs for s in _curves.sweeps(run)),
        fronts=tuple(f for run, (a, b) in axes for f in _curves.fronts(run, a, b)),
    )


def curve_rows(sweep: _curves.Sweep) -> tuple[list[str], list[list[str]]]:
    """A sweep as a table: one row per task and metric, one column per parameter value."""
    headers = ["task", "metric", "base", *(f"{sweep.parameter}={p.value}" for p in sweep.points)]
    rows = [[c.task, c.metric, number(c.base_value), *(number(p.y) for p in c.points)] for c in sweep.curves]
    return headers, rows


def front_rows(front: _curves.Front) -> tuple[list[str], list[list[str]]]:
    headers = ["variant", front.a.name, front.b.name, "on the front"]
    rows = [[short_name(p.model), number(p.a), number(p.b), "yes" if p.on_front else ""] for p in front.points]
    return headers, rows


def format_table(summary: Summary, subtasks: bool = False) -> str:
    from tabulate import tabulate

    c = summary.comparison
    out = [
        (
            f"Paired comparison with the base: {c.resamples} bootstrap resamples (seed {c.seed}),"
            f" {c.confidence:.0%} intervals; McNemar p exact; NFR/PFR negative/positive flip rate,"
            " NFI negative flips / variant errors; agree, KL: choice agreement and KL(base||variant);"
            " same out: identical outputs"
        )
    ]
    grouped: dict[tuple[str, str, str], list[TaskComparison]] = {}
    for t in c.tasks:
        grouped.setdefault((t.base_model, t.base[:12], t.base_run), []).append(t)
    for (model, identity, run), tasks in grouped.items():
        shown = [t for t in tasks if subtasks or t.headline]
        rows = table_rows(shown)
        table = tabulate([list(r.values()) for r in rows], headers=list(rows[0]) if rows else [], disable_numparse=True)
        out += ["", f"base {model} ({identity}, run {run})", table]
        if len(shown) < len(tasks):
            out.append(f"({len(tasks) - len(shown)} subtask comparisons not shown: --subtasks, or --output json)")
    if not c.tasks:
        out += ["", "no variant has its base among the runs given: nothing to pair"]
    if c.unpaired:
        out += ["", f"without their base in these runs: {', '.join(c.unpaired)}"]
    for sweep in summary.sweeps:
        headers, cells = curve_rows(sweep)
        table = tabulate(cells, headers=headers, disable_numparse=True)
        out += ["", f"sweep {sweep.title} of {sweep.base_model}, run {sweep.run}", table]
    for front in summary.fronts:
        headers, cells = front_rows(front)
        out += [
            "",
            f"Pareto front of {front.base_model} (run {front.run}): {front.a.label} vs {front.b.label}",
            tabulate(cells, headers=headers, disable_numparse=True),
        ]
    return "\n".join(out)

"""From run records to a release's content: its rows, columns and cells.

A row is a variant (its identity), a column one measurement (see `Column`), a cell the variant's
value in that column from the latest run that holds it. The difference from the base is the
paired comparison that `harness compare` makes (harness.analysis._compare.compare over all the runs given),
looked up for the run the cell comes from, never recomputed here.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness._util.files import sha256_json, sha256_text
from harness.analysis import _curves
from harness.analysis._compare import MetricComparison, TaskComparison, _output_of, compare
from harness.errors import HarnessError
from harness.leaderboard._schema import (
    Cell,
    Column,
    Comparison,
    Difference,
    LineageStep,
    Normalisation,
    Row,
    RunRef,
    Sweep,
    SweepPoint,
)
from harness.records._runs import Run, load_run, read_rows
from harness.records._schema import InterventionRecord, TaskResult, VariantRecord
from harness.wrappers import WRAPPERS

NORMALISATION = Normalisation(
    method=(
        "Open LLM Leaderboard rescaling to the random baseline: 100 * max(0, (value - random) / (1 - random)),"
        " random = mean over documents of 1/number of choices; multiple-choice accuracies (0 or 1 per document) only"
    )
)
_NORMALISED_METRICS = ("acc", "acc_norm")


def collect_runs(paths: Sequence[str | Path]) -> list[Run]:
    """Run folders given directly or found one level inside the folders given, by run id."""
    runs: dict[str, Run] = {}
    for given in paths:
        path = Path(given)
        if path.name == "record.json" or (path / "record.json").is_file():
            found = [load_run(path)]
        elif path.is_dir():
            found = [load_run(sub) for sub in sorted(path.iterdir()) if (sub / "record.json").is_file()]
        else:
            raise HarnessError(f"{path} is neither a run folder nor a folder of runs")
        if not found:
            raise HarnessError(f"{path} holds no run records (no */record.json)")
        runs.update((run.record.run_id, run) for run in found)
    return sorted(runs.values(), key=lambda r: (r.record.created_at, r.record.run_id))


def _wrapper_family(name: str) -> str:

    # The module that registers a wrapper is its family (quantize: quantize and dynamic_int8).
    return WRAPPERS.get(name).apply.__module__.rsplit(".", 1)[-1] if name in WRAPPERS else name


def _leaf_results(run: Run, result: TaskResult) -> list[TaskResult]:
    if result.kind == "task":
        return [result]
    return [r for t in run.leaves(result.task) if (r := run.results.get((result.variant, t))) and r.kind == "task"]


class _Measure:
    """The column-deciding facts of one result in one run."""

    def __init__(self, run: Run, result: TaskResult) -> None:
        leaves = _leaf_results(run, result)
        files = sorted({f"{f.split}:{f.path}:{f.sha256}" for r in leaves for f in r.data_files})
        self.data_sha256 = sha256_text("\n".join(files))
        families = {f.path.split("/", 1)[0] if f.origin == "data_dir" and "/" in f.path else "other" for r in leaves for f in r.data_files}
        self.family = families.pop() if len(families) == 1 else "other"
        counts = [r.n_samples for r in leaves if r.n_samples is not None]
        counted = bool(counts) and len(counts) == len(leaves)  # every leaf says how many documents it read
        self.n_samples = result.n_samples if result.n_samples is not None else (sum(counts) if counted else None)
        self.headline = result.task in run.headline_tasks


def _column(result: TaskResult, metric: str, measure: _Measure) -> Column:
    key: dict[str, Any] = {
        "task": result.task,
        "kind": result.kind,
        "metric": metric,
        "version": result.version,
        "data_sha256": measure.data_sha256,
        "num_fewshot": result.num_fewshot,
        "n_samples": measure.n_samples,
        "scorer": result.scorer.model_dump(mode="json") if result.scorer else None,
    }
    better = result.higher_is_better
    return Column(
        id=sha256_json(key)[:12],
        family=measure.family,
        higher_is_better=better.get(metric, better.get(metric.split(",", 1)[0])),
        scorer=result.scorer,
        headline=measure.headline,
        **{k: v for k, v in key.items() if k != "scorer"},
    )


def _random_baseline(run: Run, result: TaskResult, metric: str) -> float | None:
    """Mean over documents of 1/choices, when every document of the result is a multiple choice
    scored 0 or 1 (not, say, truthfulqa_mc2's probability mass on the true answers)."""
    inverse = []
    for leaf in _leaf_results(run, result):
        for row in read_rows(run, leaf).values():
            if _output_of(row.response) != "multiple_choice" or row.values.get(metric) not in (0, 1):
                return None
            inverse.append(1.0 / len(row.response))
    return sum(inverse) / len(inverse) if inverse else None


def _normalised(value: float | None, baseline: float | None) -> float | None:
    if value is None or baseline is None or baseline >= 1:
        return None
    return 100.0 * max(0.0, (value - baseline) / (1.0 - baseline))


def _difference(found: tuple[TaskComparison, MetricComparison] | None) -> Difference | None:
    if found is None:
        return None
    task, metric = found
    return Difference(
        base_value=metric.base,
        difference=metric.difference,
        ci_low=metric.interval[0],
        ci_high=metric.interval[1],
        n=task.n,
        base_run=task.base_run,
    )


def _lineage(variant: VariantRecord, base_model: str) -> tuple[LineageStep, ...]:
    base = variant.intervention.base
    first = LineageStep(
        name=base_model,
        family="base",
        params={"weights_sha256": base.weights_sha256, "format": base.format, "dtype": base.dtype},
    )
    return (
        first,
        *(
            LineageStep(name=w.name, family=_wrapper_family(w.name), params=w.params, artifacts=w.artifacts)
            for w in variant.intervention.wrappers
        ),
    )


def _base_identity(variant: VariantRecord) -> str:
    return InterventionRecord(base=variant.intervention.base).identity()


def _rows(variants: dict[str, VariantRecord], runs_of: dict[str, list[str]], cells: dict[str, dict[str, Cell]]) -> tuple[Row, ...]:
    rows = []
    for identity, variant in variants.items():
        base = _base_identity(variant)
        base_model = variants[base].model if base in variants else variant.model.partition("+")[0]
        wrappers = variant.intervention.wrappers
        parent = None
        if wrappers:
            parent = InterventionRecord(base=variant.intervention.base, wrappers=wrappers[:-1]).identity()
            parent = parent if parent in variants else None
        rows.append(
            Row(
                identity=identity,
                model=variant.model,
                base=base,
                base_model=base_model,
                parent=parent,
                lineage=_lineage(variant, base_model),
                base_origin=variant.base_origin,
                intervention=variant.intervention,
                cost=variant.cost,
                applied=variant.applied,
                runs=tuple(runs_of[identity]),
                cells=dict(sorted(cells.get(identity, {}).items())),
            )
        )
    # Grouped by base (each base first, then its variants), bases and variants by name.
    return tuple(sorted(rows, key=lambda r: (r.base_model, r.base, r.identity != r.base, r.model, r.identity)))


def dirty_runs(runs: Sequence[Run]) -> list[str]:
    """Run ids of the records made from a checkout with uncommitted changes."""
    return [run.record.run_id for run in runs if run.record.environment.git_dirty]


def _run_ref(run: Run, root: Path) -> RunRef:
    # Where `harness report` writes the report, present or not: a release never depends on which
    # reports exist (the site links only those that do).
    report = run.folder.resolve() / "report.html"
    env = run.record.environment
    return RunRef(
        run_id=run.record.run_id,
        created_at=run.record.created_at,
        harness_version=env.harness_version,
        git_commit=env.git_commit,
        command=run.record.command,
        report=Path(os.path.relpath(report, root.resolve())).as_posix(),
        git_dirty=env.git_dirty,
    )


def _sweeps(runs: Sequence[Run]) -> tuple[Sweep, ...]:
    found: dict[str, Sweep] = {}
    for run in runs:
        for sweep in _curves.sweeps(run):
            made = Sweep(
                run=sweep.run,
                base=sweep.base,
                base_model=sweep.base_model,
                wrapper=sweep.wrapper,
                parameter=sweep.parameter,
                fixed=sweep.fixed,
                points=tuple(SweepPoint(variant=p.variant, value=p.value, x=p.x) for p in sweep.points),
            )
            # the same sweep in a later run replaces the earlier one
            found[sha256_json(made.model_dump(mode="json", exclude={"run"}))] = made
    return tuple(found.values())


def build_content(runs: Sequence[Run], root: Path, normalise: bool, settings: Comparison) -> dict[str, Any]:
    """Every field of a release but its version and changelog (runs sorted oldest first)."""
    comparison = compare(runs, settings.seed, settings.resamples, settings.confidence)
    paired = {(t.variant_run, t.variant, t.task, m.metric): (t, m) for t in comparison.tasks for m in t.metrics}
    columns: dict[str, Column] = {}
    baselines: dict[str, float | None] = {}
    cells: dict[str, dict[str, Cell]] = {}
    variants: dict[str, VariantRecord] = {}
    runs_of: dict[str, list[str]] = {}
    for run in runs:  # oldest first: a later run's cell replaces an earlier one
        run_id = run.record.run_id
        for variant in run.record.variants:
            variants[variant.identity] = variant
            runs_of.setdefault(variant.identity, []).append(run_id)
        for result in run.record.results:
            measure = _Measure(run, result)
            for metric, value in result.metrics.items():
                column = _column(result, metric, measure)
                if column.id in columns:
                    if column.headline and not columns[column.id].headline:
                        columns[column.id] = columns[column.id].model_copy(update={"headline": True})
                else:
                    columns[column.id] = column
                    if normalise and metric in _NORMALISED_METRICS:
                        baselines[column.id] = _random_baseline(run, result, metric)
                baseline = baselines.get(column.id)
                cells.setdefault(result.variant, {})[column.id] = Cell(
                    value=value.value,
                    stderr=value.stderr,
                    run=run_id,
                    difference=_difference(paired.get((run_id, result.variant, result.task, metric))),
                    normalised=_normalised(value.value, baseline) if normalise else None,
                )
    ordered = sorted(
        (c.model_copy(update={"random_baseline": baselines.get(c.id)}) for c in columns.values()),
        key=lambda c: (c.family, c.task, c.metric, str(c.version), c.num_fewshot or 0, c.n_samples or 0, c.id),
    )
    return {
        "comparison": settings,
        "normalisation": NORMALISATION if normalise else None,
        "runs": tuple(_run_ref(run, root) for run in runs),
        "columns": tuple(ordered),
        "rows": _rows(variants, runs_of, cells),
        "unpaired": tuple(sorted(set(comparison.unpaired))),
        "sweeps": _sweeps(runs),
    }

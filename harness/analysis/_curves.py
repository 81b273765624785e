"""Sweeps as curves and Pareto fronts, from one run record's task results and cost facts.

A sweep is a set of variants of one base that differ in exactly one wrapper parameter (what a `|`
in a model string makes); its curve is a metric against that parameter, per task. A front is the
set of variants of one base that no other variant of it beats on both of two chosen axes: two task
metrics (toxicity probability against word perplexity) or a metric against a cost fact of the
record (accuracy against weight MB, bits per parameter or GFLOPs per token).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from harness._util.registry import did_you_mean
from harness.errors import HarnessError
from harness.records._runs import Run
from harness.records._schema import AppliedRecord, CostRecord, VariantRecord

COSTS: dict[str, tuple[str, Callable[[CostRecord], float]]] = {
    "weight_mb": ("weight (MB)", lambda c: c.weight_bytes / 1e6),
    "bits_per_parameter": ("whole model: stored bits per parameter", lambda c: 8 * c.weight_bytes / c.parameters),
    "gflops_per_token": ("forward GFLOPs per token", lambda c: c.flops_per_token / 1e9),
    "parameters_m": ("parameters (millions)", lambda c: c.parameters / 1e6),
}
"""Cost axes (`cost/NAME`), from each variant's CostRecord; lower is better for all of them. Bits
per parameter are the whole model's: the float parameters a quantizer leaves (embeddings, norms)
count at their dtype's width, so SmolLM2-135M with 4-bit linear layers is 10.15, not 4.3
(`QUANTIZED_LABEL` is the quantized layers' own figure)."""

QUANTIZED_LABEL = "quantized linear layers: stored bits per weight"
"""Codes, zero points and scales per quantized weight (4.3125 for 4-bit codes in groups of 64)."""


def quantized_linear_bits(applied: Sequence[AppliedRecord]) -> tuple[int, float] | None:
    """(quantized linear weights, their stored bits per weight) as the last wrapper that quantized
    them declared (quantize, dynamic_int8: `quantized_weights`, `stored_bits_per_weight`); a later
    quantizer replaces an earlier one's storage of the same layers. None when no wrapper did."""
    for record in reversed(applied):
        weights, bits = record.info.get("quantized_weights"), record.info.get("stored_bits_per_weight")
        if isinstance(weights, int) and weights > 0 and isinstance(bits, int | float):
            return weights, float(bits)
    return None


def cost_facts(cost: CostRecord | None, applied: Sequence[AppliedRecord]) -> list[tuple[str, float | None]]:
    """Every cost a report or a variant page shows, labelled: the quantized layers' stored bits per
    weight (None when nothing is quantized) right before the whole model's bits per parameter."""
    if cost is None:
        return []
    quantized = quantized_linear_bits(applied)
    facts: list[tuple[str, float | None]] = []
    for name, (label, get) in COSTS.items():
        if name == "bits_per_parameter":
            facts.append((QUANTIZED_LABEL, quantized[1] if quantized else None))
        facts.append((label, get(cost)))
    return facts


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _value(run: Run, variant: str, task: str, metric: str) -> tuple[float | None, float | None]:
    result = run.results.get((variant, task))
    found = result.metrics.get(metric) if result else None
    return (found.value, found.stderr) if found else (None, None)


def _higher_is_better(run: Run, task: str, metric: str) -> bool | None:
    for (_, name), result in run.results.items():
        if name == task and result.higher_is_better:
            known = result.higher_is_better
            return known.get(metric, known.get(metric.split(",")[0]))
    return None


@dataclass(frozen=True)
class SweepPoint:
    variant: str
    model: str
    value: str
    """The parameter's canonical text."""
    x: float | None
    """Its number, when every value of the sweep is one."""


@dataclass(frozen=True)
class CurvePoint:
    value: str
    x: float | None
    y: float | None
    stderr: float | None


@dataclass(frozen=True)
class Curve:
    task: str
    metric: str
    higher_is_better: bool | None
    base_value: float | None
    points: tuple[CurvePoint, ...]


@dataclass(frozen=True)
class Sweep:
    run: str
    base: str
    base_model: str
    wrapper: str
    parameter: str
    fixed: tuple[tuple[str, str], ...]
    """The settings that tell this sweep from others of the same parameter (`score=taylor`)."""
    points: tuple[SweepPoint, ...]
    curves: tuple[Curve, ...]

    @property
    def title(self) -> str:
        fixed = f" ({', '.join(f'{k}={v}' for k, v in self.fixed)})" if self.fixed else ""
        return f"{self.wrapper}: {self.parameter}{fixed}"


def _lineages(run: Run) -> dict[str, list[VariantRecord]]:
    """Base identity -> its variants in the run (wrapped ones only), in run order."""
    lineages: dict[str, list[VariantRecord]] = {}
    for variant in run.record.variants:
        if variant.intervention.wrappers:
            lineages.setdefault(variant.intervention.base.model_dump_json(), []).append(variant)
    return lineages


def _base(run: Run, variant: VariantRecord) -> VariantRecord | None:
    return next(
        (v for v in run.record.variants if v.intervention.base == variant.intervention.base and not v.intervention.wrappers),
        None,
    )


def _varying(variants: list[VariantRecord]) -> set[tuple[int, str]]:
    """(wrapper position, parameter) pairs whose value is not the same in all of `variants`."""
    seen: dict[tuple[int, str], set[str]] = {}
    for v in variants:
        for i, w in enumerate(v.intervention.wrappers):
            for key, value in w.params.items():
                seen.setdefault((i, key), set()).add(value)
    return {k for k, values in seen.items() if len(values) > 1}


def sweeps(run: Run) -> list[Sweep]:
    """Every sweep in the run, each with a curve per headline task and metric."""
    found = []
    for variants in _lineages(run).values():
        # (wrapper position, parameter, every other (wrapper, its other parameters)) -> (variant, value)
        groups: dict[tuple[int, str, tuple[tuple[str, tuple[tuple[str, str], ...]], ...]], list[tuple[VariantRecord, str]]] = {}
        for v in variants:
            wrappers = v.intervention.wrappers
            for i, w in enumerate(wrappers):
                for key in w.params:
                    rest = tuple(
                        (w2.name, tuple(sorted((k, x) for k, x in w2.params.items() if (j, k) != (i, key))))
                        for j, w2 in enumerate(wrappers)
                    )
                    groups.setdefault((i, key, rest), []).append((v, w.params[key]))
        for (i, key, _), members in groups.items():
            if len({value for _, value in members}) < 2:
                continue
            first = members[0][0]
            names = [w.name for w in first.intervention.wrappers]
            same_names = [v for v in variants if [w.name for w in v.intervention.wrappers] == names]
            fixed = tuple(
                (k if j == i else f"{first.intervention.wrappers[j].name}:{k}", first.intervention.wrappers[j].params[k])
                for j, k in sorted(_varying(same_names))
                if (j, k) != (i, key)
            )
            numbers = [x for _, value in members if (x := _number(value)) is not None]
            if len(numbers) == len(members):  # every value is a number: the points are placed and sorted on an x axis
                ordered = sorted(zip(members, numbers, strict=True), key=lambda member: member[1])
                points = [SweepPoint(v.identity, v.model, value, x) for (v, value), x in ordered]
            else:
                points = [SweepPoint(v.identity, v.model, value, None) for v, value in members]
            base = _base(run, first)
            found.append(
                Sweep(
                    run=run.record.run_id,
                    base=base.identity if base else "",
                    base_model=base.model if base else first.model.split("+", 1)[0],
                    wrapper=first.intervention.wrappers[i].name,
                    parameter=key,
                    fixed=fixed,
                    points=tuple(points),
                    curves=tuple(_curves(run, base, points)),
                )
            )
    return found


def _curves(run: Run, base: VariantRecord | None, points: list[SweepPoint]) -> list[Curve]:
    curves = []
    for task in run.headline_tasks:
        first = run.results.get((points[0].variant, task))
        for metric in first.metrics if first else ():
            values = [_value(run, p.variant, task, metric) for p in points]
            curves.append(
                Curve(
                    task=task,
                    metric=metric,
                    higher_is_better=_higher_is_better(run, task, metric),
                    base_value=_value(run, base.identity, task, metric)[0] if base else None,
                    points=tuple(CurvePoint(p.value, p.x, y, se) for p, (y, se) in zip(points, values, strict=True)),
                )
            )
    return curves


@dataclass(frozen=True)
class Axis:
    name: str
    """`TASK/METRIC` or `cost/NAME`."""
    task: str | None
    metric: str
    label: str
    """For a plot: what it is, its unit, and which way is better."""
    higher_is_better: bool

    def value(self, run: Run, variant: VariantRecord) -> float | None:
        if self.task is None:
            value = COSTS[self.metric][1](variant.cost) if variant.cost else None
        else:
            value = _value(run, variant.identity, self.task, self.metric)[0]
        return value if value is not None and math.isfinite(value) else None


def _cost_axis(name: str) -> Axis:
    label = COSTS[name][0]
    return Axis(f"cost/{name}", None, name, f"{label}, lower is better", False)


def _metric_axis(run: Run, task: str, metric: str) -> Axis:
    better = _higher_is_better(run, task, metric)
    direction = "higher" if better is not False else "lower"
    return Axis(f"{task}/{metric}", task, metric, f"{task} {metric}, {direction} is better", better is not False)


def resolve_axis(run: Run, text: str) -> Axis:
    """`cost/NAME`, `TASK/METRIC`, or a bare cost or metric name that one headline task reports."""
    text = text.strip()
    if text.startswith("cost/") or (text in COSTS and "/" not in text):
        name = text.removeprefix("cost/")
        if name not in COSTS:
            raise HarnessError(f"unknown cost axis {text!r}{did_you_mean(name, list(COSTS))}; costs: {', '.join(COSTS)}")
        return _cost_axis(name)
    reported = {(r.task, m) for r in run.record.results for m in r.metrics}
    if "/" in text:
        task, metric = text.split("/", 1)
        if (task, metric) not in reported:
            known = sorted({f"{t}/{m}" for t, m in reported})
            raise HarnessError(f"run {run.record.run_id} has no metric {text!r}{did_you_mean(text, known)}")
        return _metric_axis(run, task, metric)
    headline = set(run.headline_tasks)
    tasks = sorted(t for t, m in reported if m == text and t in headline) or sorted(t for t, m in reported if m == text)
    if not tasks:
        known = sorted({m for _, m in reported} | set(COSTS))
        raise HarnessError(f"run {run.record.run_id} reports no metric {text!r}{did_you_mean(text, known)}")
    if len(tasks) > 1:
        raise HarnessError(f"metric {text!r} is reported by {', '.join(tasks)}: name one as TASK/{text}")
    return _metric_axis(run, tasks[0], text)


def parse_pareto(run: Run, text: str) -> tuple[Axis, Axis]:
    """`A,B`; a filtered metric holds a comma itself (`mgsm_direct/exact_match,flexible-extract`),
    so the one split at which both halves name an axis is taken."""
    pieces = [p.strip() for p in text.split(",")]
    found, first_error = [], None
    for cut in range(1, len(pieces)):
        try:
            found.append((resolve_axis(run, ",".join(pieces[:cut])), resolve_axis(run, ",".join(pieces[cut:]))))
        except HarnessError as exc:
            first_error = first_error or exc
    if len(found) == 1:
        return found[0]
    if not found:
        if first_error is None:
            raise HarnessError(f"--pareto needs two axes, METRIC_A,METRIC_B; got {text!r}")
        raise first_error
    raise HarnessError(f"--pareto {text!r} splits into two axes in more than one way: name them as TASK/METRIC")


@dataclass(frozen=True)
class FrontPoint:
    variant: str
    model: str
    a: float
    b: float
    on_front: bool


@dataclass(frozen=True)
class Front:
    run: str
    base_model: str
    a: Axis
    b: Axis
    points: tuple[FrontPoint, ...]


def pareto_front(points: list[tuple[float, float]], a_higher: bool, b_higher: bool) -> list[bool]:
    """For each point, whether no other point is at least as good on both axes and better on one."""
    sa, sb = (1 if a_higher else -1), (1 if b_higher else -1)
    signed = [(sa * a, sb * b) for a, b in points]
    return [not any(qa >= pa and qb >= pb and (qa > pa or qb > pb) for qa, qb in signed) for pa, pb in signed]


def fronts(run: Run, a: Axis, b: Axis) -> list[Front]:
    """One front per base in the run, over the base and its variants that have both values."""
    found = []
    for variants in _lineages(run).values():
        base = _base(run, variants[0])
        members = ([base] if base else []) + variants
        values = [(v, a.value(run, v), b.value(run, v)) for v in members]
        valued = [(v, x, y) for v, x, y in values if x is not None and y is not None]
        if len(valued) < 2 or not _varies([x for _, x, _ in valued]) or not _varies([y for _, _, y in valued]):
            continue  # a front along an axis on which every point sits at one value shows nothing
        on = pareto_front([(x, y) for _, x, y in valued], a.higher_is_better, b.higher_is_better)
        found.append(
            Front(
                run=run.record.run_id,
                base_model=base.model if base else variants[0].model.split("+", 1)[0],
                a=a,
                b=b,
                points=tuple(FrontPoint(v.identity, v.model, x, y, flag) for (v, x, y), flag in zip(valued, on, strict=True)),
            )
        )
    return found


def _varies(values: list[float]) -> bool:
    """More than float rounding between the smallest and the largest value."""
    low, high = min(values), max(values)
    return high - low > 1e-9 * max(abs(low), abs(high), 1e-12)


def default_axes(run: Run) -> list[tuple[Axis, Axis]]:
    """The fronts a report shows unless asked for others: each headline task's first metric
    against each cost that differs between the run's variants."""
    costs = [v.cost for v in run.record.variants if v.cost]
    pairs = []
    for task in run.headline_tasks:
        metrics = next((r.metrics for (_, t), r in run.results.items() if t == task and r.metrics), {})
        if not metrics:
            continue
        metric_axis = _metric_axis(run, task, next(iter(metrics)))
        for name in ("weight_mb", "gflops_per_token"):
            if len({round(COSTS[name][1](cost), 6) for cost in costs}) > 1:
                pairs.append((_cost_axis(name), metric_axis))
    return pairs

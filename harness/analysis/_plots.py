"""The report's figures: a sweep's curves and a Pareto front, as PNG bytes (matplotlib, Agg).

Every figure says what it shows without the page around it: axis labels with the metric, its unit
and which way is better, a legend, the base drawn for reference.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from harness.analysis._compare import short_name
from harness.analysis._curves import Curve, CurvePoint, Front, Sweep
from harness.records import UNIT_INTERVAL_METRICS

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def _figure(columns: int, width: float = 4.4, height: float = 3.6) -> tuple[Figure, list[Axes]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, columns, figsize=(width * columns, height), squeeze=False)
    return figure, list(axes[0])


def _png(figure: Figure) -> bytes:
    """PNG with a 64-colour palette: a third of the bytes of full colour, the same to the eye, so
    a report with a dozen plots stays well under a megabyte."""
    import matplotlib.pyplot as plt
    from PIL import Image

    rendered = io.BytesIO()
    figure.tight_layout()
    figure.savefig(rendered, format="png", dpi=90)
    plt.close(figure)
    rendered.seek(0)
    palette = Image.open(rendered).convert("RGB").quantize(colors=64)
    out = io.BytesIO()
    palette.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _log_if_wide(axis: Axes, values: Sequence[float | None], which: str) -> None:
    """Log scale when positive values span more than two orders of magnitude (perplexities)."""
    positive = [v for v in values if v is not None and v > 0 and math.isfinite(v)]
    if positive and len(positive) == len([v for v in values if v is not None]) and max(positive) / min(positive) > 100:
        (axis.set_yscale if which == "y" else axis.set_xscale)("log")


def _direction(higher_is_better: bool | None) -> str:
    if higher_is_better is None:
        return ""
    return "higher is better" if higher_is_better else "lower is better"


def _error_bars(metric: str, points: list[CurvePoint]) -> list[list[float]]:
    """Below and above each point: its stderr, cut at 0 and 1 for a metric that lives in [0, 1]."""
    bounded = metric.split(",", 1)[0] in UNIT_INTERVAL_METRICS
    below, above = [], []
    for p in points:
        error = p.stderr if p.stderr is not None and math.isfinite(p.stderr) else 0.0
        y = p.y if p.y is not None else 0.0
        below.append(min(error, y) if bounded else error)
        above.append(min(error, 1.0 - y) if bounded else error)
    return [below, above]


def sweep_png(sweep: Sweep) -> bytes:
    """One panel per headline task: its first metric against the swept parameter."""
    curves: list[Curve] = []
    for curve in sweep.curves:
        if not any(c.task == curve.task for c in curves):
            curves.append(curve)
    figure, axes = _figure(max(1, len(curves)))
    for axis, curve in zip(axes, curves, strict=False):
        xs: list[float] = [p.x for p in curve.points if p.x is not None]
        numeric = len(xs) == len(curve.points)
        if not numeric:
            xs = [i for i in range(len(curve.points))]
        ys = [p.y for p in curve.points]
        # A variant without a number (nan, missing) keeps its tick but gets no marker.
        shown = [(x, y, p) for x, p in zip(xs, curve.points, strict=True) if (y := p.y) is not None and math.isfinite(y)]
        if shown:
            axis.errorbar(
                [x for x, _, _ in shown],
                [y for _, y, _ in shown],
                yerr=_error_bars(curve.metric, [p for _, _, p in shown]),
                marker="o",
                capsize=3,
                label=f"{sweep.wrapper} variants (± stderr)",
            )
        if curve.base_value is not None:
            axis.axhline(curve.base_value, color="grey", linestyle="--", label=f"base ({sweep.base_model})")
        if not numeric:
            axis.set_xticks(xs, [p.value for p in curve.points], rotation=20)
        _log_if_wide(axis, [*ys, curve.base_value], "y")
        axis.set_xlabel(f"{sweep.wrapper} parameter {sweep.parameter}")
        axis.set_ylabel(f"{curve.metric} ({_direction(curve.higher_is_better)})")
        axis.set_title(curve.task)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    figure.suptitle(f"sweep {sweep.title}", fontsize=10)
    return _png(figure)


def front_png(front: Front) -> bytes:
    figure, (axis,) = _figure(1, 7.0, 5.0)
    others = [p for p in front.points if not p.on_front]
    on = sorted((p for p in front.points if p.on_front), key=lambda p: p.a)
    axis.scatter([p.a for p in others], [p.b for p in others], color="lightgrey", edgecolor="grey", label="dominated variants")
    axis.plot([p.a for p in on], [p.b for p in on], "o-", color="tab:red", label="Pareto front")
    base = [p for p in front.points if "+" not in p.model]
    if base:
        axis.scatter([base[0].a], [base[0].b], marker="*", s=160, color="black", zorder=3, label=f"base ({front.base_model})")
    # Labels for the front and the base only (the table names every point); staggered, since
    # front points often sit close together.
    _log_if_wide(axis, [p.a for p in front.points], "x")
    right_edge = max(p.a for p in front.points)
    for index, p in enumerate([*on, *base[:1]]):
        at_right = p.a == right_edge  # its label runs leftwards, inside the axes
        axis.annotate(
            short_name(p.model),
            (p.a, p.b),
            fontsize=6,
            textcoords="offset points",
            xytext=(-4 if at_right else 4, 4 + 8 * (index % 3)),
            ha="right" if at_right else "left",
        )
    _log_if_wide(axis, [p.b for p in front.points], "y")
    axis.set_xlabel(front.a.label)
    axis.set_ylabel(front.b.label)
    axis.set_title(f"Pareto front: {front.b.name} vs {front.a.name}", fontsize=9)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    return _png(figure)

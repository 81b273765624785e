"""The reproducibility report of one run: a Markdown file and a self-contained HTML page.

What was run (exact command, spec, intervention records), on what (data files and hashes, task
versions), with what (versions, hardware, seed), the results with confidence intervals, the paired
comparison of each variant with its base, each sweep's curves, Pareto fronts, timings and cost.
Both files come from templates under harness/templates/. Everything taken from a record is
escaped: HTML by jinja2's autoescaping, Markdown by `_md_finalize` (a model named
`<img src=x onerror=alert(1)>` shows as text in both). The plots are PNGs embedded as base64, so
the page needs nothing else. No sample text (documents or model outputs) goes into either file.
Both are rendered before either is written, and each is written atomically.
"""

from __future__ import annotations

import base64
import json
import math
import re
import shlex
from collections.abc import Sequence
from pathlib import Path
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

from harness._util.files import atomic_write_text
from harness._util.paths import check_output_folder
from harness.analysis import _curves, _plots, _stats
from harness.analysis._compare import Summary, compare, curve_rows, front_rows, number, table_rows
from harness.analysis._defaults import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, check_bootstrap
from harness.records._runs import Run, load_run
from harness.records._schema import UNIT_INTERVAL_METRICS, TaskResult, VariantRecord
from harness.spec._options import DEFAULT_SEED

if TYPE_CHECKING:
    import jinja2

TEMPLATES = Path(__file__).parent / "templates"


class MdText(str):
    """Markdown that harness built and knows to be safe: passed through unescaped."""


_MD_SPECIAL = re.compile(r"([\\`*_<>|&\[\]])")


def _md_escape(text: str) -> str:
    """Backslash-escape what could start HTML, emphasis, a link, code or a table cell."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(text.splitlines()))


def _md_finalize(value: Any) -> Any:
    return value if isinstance(value, MdText) or not isinstance(value, str) else _md_escape(value)


def _code(value: Any) -> MdText:
    """An inline code span: its content shows literally (pipes escaped for tables)."""
    text = " ".join(str(value).splitlines()).replace("|", "\\|")
    if not text:
        return MdText("")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return MdText(f"{fence}{pad}{text}{pad}{fence}")


def _block(value: Any, language: str = "") -> MdText:
    """A fenced code block longer than any backtick run inside it."""
    text = str(value)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return MdText(f"{fence}{language}\n{text}\n{fence}")


def _environment(markdown: bool) -> jinja2.Environment:
    import jinja2

    if markdown:
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES),
            autoescape=False,
            finalize=_md_finalize,
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
        )
        env.filters.update(code=_code, block=_block)
    else:
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
    env.tests["mdtext"] = lambda value: isinstance(value, MdText)
    return env


def _computed(row: dict[str, str], record_fields: Sequence[str]) -> dict[str, str]:
    """Cells harness computed are safe Markdown; those from the record stay plain (escaped)."""
    return {k: (v if k in record_fields else MdText(v)) for k, v in row.items()}


def _facts(info: dict[str, Any]) -> str:
    """Scalar facts of an applied wrapper; long lists (per-layer values) are summarised."""
    parts = []
    for key, value in info.items():
        if isinstance(value, list | dict):
            value = f"[{len(value)} values]" if len(json.dumps(value)) > 60 else json.dumps(value)
        parts.append(f"{key}={value}")
    return ", ".join(parts)


def _cost(variant: VariantRecord) -> dict[str, str]:
    return {label: MdText("" if value is None else number(value)) for label, value in _curves.cost_facts(variant.cost, variant.applied)}


def _variant(variant: VariantRecord) -> dict[str, Any]:
    base = variant.intervention.base
    return {
        "model": variant.model,
        "identity": variant.identity,
        "origin": variant.base_origin,
        "format": base.format,
        "dtype": base.dtype,
        "weights": base.weights_sha256,
        "wrappers": [
            {
                "name": w.name,
                "params": ", ".join(f"{k}={v}" for k, v in w.params.items()),
                "artifacts": ", ".join(f"{k} {v}" for k, v in w.artifacts.items()),
            }
            for w in variant.intervention.wrappers
        ],
        "applied": [{"name": a.name, "facts": _facts(a.info)} for a in variant.applied],
        "cost": _cost(variant),
    }


def _task(result: TaskResult) -> dict[str, Any]:
    scorer = result.scorer
    return {
        "task": result.task,
        "kind": result.kind,
        "version": str(result.version),
        "num_fewshot": str(result.num_fewshot),
        "n": str(result.n_samples) if result.n_samples is not None else "",
        "config_hash": (result.config_hash or "")[:16],
        "files": [{"split": f.split, "path": f.path, "origin": f.origin, "sha256": f.sha256} for f in result.data_files],
        "scorer": f"{scorer.name} ({scorer.version}, weights {scorer.weights_sha256[:16]})" if scorer else "",
    }


def _interval(metric: str, value: float | None, stderr: float | None, n: int | None, confidence: float, z: float) -> str:
    """Wilson's interval for a metric in [0, 1] over n documents (it stays inside [0, 1]), else
    value +- z * lm-eval's stderr."""
    if value is None or not math.isfinite(value):
        return "-"
    if metric.split(",", 1)[0] in UNIT_INTERVAL_METRICS and n and 0.0 <= value <= 1.0:
        low, high = _stats.wilson_interval(value, n, confidence)
        return f"[{number(low)}, {number(high)}]"
    if stderr is None:
        return "-"
    return f"[{number(value - z * stderr)}, {number(value + z * stderr)}]"


def _results(run: Run, confidence: float, headline_only: bool) -> list[dict[str, str]]:
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    models = {v.identity: v.model for v in run.record.variants}
    rows = []
    for r in run.record.results:
        if headline_only and r.task not in run.headline_tasks:
            continue
        for metric, m in r.metrics.items():
            interval = _interval(metric, m.value, m.stderr, r.n_samples, confidence, z)
            rows.append(
                _computed(
                    {
                        "model": models[r.variant],
                        "task": r.task,
                        "metric": metric,
                        "n": str(r.n_samples) if r.n_samples is not None else "",
                        "value": number(m.value),
                        "stderr": number(m.stderr),
                        f"{confidence:.0%} CI": interval,
                    },
                    ("model", "task", "metric"),
                )
            )
    return rows


def _timings(run: Run) -> list[dict[str, str]]:
    rows = []
    for v in run.record.variants:
        mine = [r for r in run.record.results if r.variant == v.identity and r.kind == "task"]
        rows.append(
            _computed(
                {
                    "model": v.model,
                    "load s": number(v.load_seconds, 1) if v.load_seconds is not None else "cached",
                    "tasks s": number(sum(r.seconds or 0.0 for r in mine), 1),
                    "requests computed": str(sum(r.requests_computed or 0 for r in mine)),
                    "requests cached": str(sum(r.requests_cached or 0 for r in mine)),
                    "scoring s": number(v.scoring_seconds, 1) if v.scoring_seconds is not None else "",
                    **_cost(v),
                },
                ("model",),
            )
        )
    if not any(row.get(_curves.QUANTIZED_LABEL) for row in rows):  # no quantized variant: no empty column
        for row in rows:
            row.pop(_curves.QUANTIZED_LABEL, None)
    return rows


def _png(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def context(run: Run, summary: Summary, confidence: float) -> dict[str, Any]:
    """Everything the templates show, as strings (record text plain, computed text MdText)."""
    record = run.record
    comparison = summary.comparison
    first_of_task: dict[str, TaskResult] = {}
    for r in record.results:
        first_of_task.setdefault(r.task, r)
    env = record.environment
    compare_fields = ("variant", "task", "metric")
    return {
        "run_id": record.run_id,
        "created_at": record.created_at,
        "schema_version": record.schema_version,
        "command": shlex.join(record.command),
        "spec_given": json.dumps(record.spec_given, indent=2, sort_keys=True),
        "spec": json.dumps(record.spec.model_dump(mode="json"), indent=2),
        "variants": [_variant(v) for v in record.variants],
        "tasks": [_task(r) for r in first_of_task.values()],
        "environment": [
            ("harness", f"{env.harness_version} at {env.git_commit or 'unknown commit'}{' (dirty)' if env.git_dirty else ''}"),
            *((("code digest", env.code_digest),) if env.code_digest else ()),
            *((("uncommitted diff sha256", env.git_diff_sha256),) if env.git_diff_sha256 else ()),
            ("python", env.python),
            *((f"package {name}", version) for name, version in sorted(env.packages.items())),
            ("platform", env.platform),
            ("processor", f"{env.processor}, {env.cpu_count} cores, {env.torch_threads} torch threads"),
            ("memory", f"{env.memory_gb} GB" if env.memory_gb is not None else "unknown"),
            ("accelerator", env.accelerator or "none"),
            ("device", record.spec.device),
            ("seed", str(record.spec.seed)),
            ("batch size", str(record.spec.batch_size)),
        ],
        "results": _results(run, confidence, headline_only=True),
        "all_results": _results(run, confidence, headline_only=False),
        "comparison_settings": MdText(
            f"{comparison.resamples} paired bootstrap resamples, seed {comparison.seed}, {comparison.confidence:.0%} percentile intervals"
        ),
        "comparison": [_computed(r, compare_fields) for r in table_rows(t for t in comparison.tasks if t.headline)],
        "all_comparison": [_computed(r, compare_fields) for r in table_rows(comparison.tasks)],
        "unpaired": list(comparison.unpaired),
        "sweeps": [
            {
                "title": f"{s.title} of {s.base_model}",
                "headers": curve_rows(s)[0],
                "rows": [[*row[:2], *(MdText(c) for c in row[2:])] for row in curve_rows(s)[1]],
                "png": _png(_plots.sweep_png(s)),
            }
            for s in summary.sweeps
        ],
        "fronts": [
            {
                "title": f"{f.b.name} vs {f.a.name} of {f.base_model}",
                "labels": (f.a.label, f.b.label),
                "headers": front_rows(f)[0],
                "rows": [[row[0], *(MdText(c) for c in row[1:])] for row in front_rows(f)[1]],
                "png": _png(_plots.front_png(f)),
            }
            for f in summary.fronts
        ],
        "total_seconds": MdText(number(record.timings.total_seconds, 1)),
        "setup_seconds": MdText(number(record.timings.setup_seconds, 1)),
        "timings": _timings(run),
    }


def render(
    run: Run,
    seed: int = DEFAULT_SEED,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    pareto: Sequence[str] = (),
) -> tuple[str, str]:
    """(Markdown, HTML) of `run`; fronts for each `A,B` in `pareto`, else each headline metric
    against each cost that differs between the run's variants."""
    axes = [_curves.parse_pareto(run, text) for text in pareto] or _curves.default_axes(run)
    summary = Summary(
        comparison=compare([run], seed, resamples, confidence),
        sweeps=tuple(_curves.sweeps(run)),
        fronts=tuple(f for a, b in axes for f in _curves.fronts(run, a, b)),
    )
    values = context(run, summary, confidence)
    markdown = _environment(markdown=True).get_template("report.md.j2").render(values)
    html = _environment(markdown=False).get_template("report.html.j2").render(values)
    return markdown, html


def write_report(
    path: str | Path,
    out: str | Path | None = None,
    seed: int = DEFAULT_SEED,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    pareto: Sequence[str] = (),
) -> tuple[Path, Path]:
    """Write report.md and report.html into `out` (default: the run folder); return their paths."""
    check_bootstrap(seed, resamples, confidence)
    if out:
        check_output_folder(out, "--out")
    run = load_run(path)
    markdown, html = render(run, seed, resamples, confidence, pareto)
    folder = Path(out) if out else run.folder
    written = (folder / "report.md", folder / "report.html")
    atomic_write_text(written[0], markdown)
    atomic_write_text(written[1], html)
    return written

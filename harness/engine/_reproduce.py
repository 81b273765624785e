"""Rerun a record's spec and say, per task and metric, whether the same numbers come back.

Each rerun evaluates with an empty request cache (a rerun answered from the cache would only
replay the record); the caches of what is recomputed from content-addressed inputs (converted
weights, file hashes, quantization sensitivities, fitted artifacts) are shared with the user's.
Matching is exact by default: every harness task is deterministic on one machine, sampled
toxicity continuations included (seeded per prompt). `--tolerance` allows an absolute difference,
for reruns on other hardware. Rerunning at several batch sizes checks that results do not move
with the batch size (a known lm-eval pain point: lm-eval issues #335, #1645, #2498).
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.engine._run import run
from harness.errors import HarnessError
from harness.records._runs import Run, load_run, read_rows
from harness.records._schema import TaskResult
from harness.spec._spec import build_spec
from harness.tasks.index import include_paths, known_names, task_manager


@dataclass(frozen=True)
class Rerun:
    batch_size: int | str
    folder: Path
    seconds: float


@dataclass(frozen=True)
class Check:
    """One thing compared: a variant's identity, a task's data and version, a metric, or the
    per-document scores of a sample log."""

    model: str
    task: str
    check: str
    old: str
    new: tuple[str, ...]
    """One per rerun."""
    match: tuple[bool, ...]


@dataclass(frozen=True)
class Reproduction:
    run: str
    tolerance: float
    reruns: tuple[Rerun, ...]
    checks: tuple[Check, ...]
    notes: tuple[str, ...]
    """What differs in the environment (code commit, package versions); facts, not failures."""

    @property
    def ok(self) -> bool:
        return all(all(c.match) for c in self.checks)


def parse_batch_sizes(text: str | None) -> list[int | str] | None:
    if text is None:
        return None
    sizes: list[int | str] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        if part == "auto":
            sizes.append(part)
            continue
        if not part.isdigit() or int(part) < 1:
            raise HarnessError(f"--batch-sizes takes positive integers or auto, got {part!r}")
        sizes.append(int(part))
    if not sizes:
        raise HarnessError("--batch-sizes is empty")
    return list(dict.fromkeys(sizes))


def _given(run: Run, batch_size: int | str, output_dir: Path, data_dir: str | None) -> dict[str, Any]:
    """The record's resolved spec as `harness eval` fields: the variants exactly as evaluated
    (bases included, so no_base), the scorer that ran, the data directory it read."""
    spec = run.record.spec
    limit: Any = spec.limit
    if spec.limit_per_task:
        limit = {**({"default": spec.limit} if spec.limit is not None else {}), **spec.limit_per_task}
    scorers = {r.scorer.name for r in run.record.results if r.scorer is not None}
    recorded_dir = spec.data_dir if spec.data_dir and Path(spec.data_dir).is_dir() else None
    return {
        "model": list(spec.models),
        "tasks": list(spec.tasks),
        "limit": limit,
        "num_fewshot": spec.num_fewshot,
        "batch_size": batch_size,
        "device": spec.device,
        "seed": spec.seed,
        "data_dir": data_dir or recorded_dir,
        "include_path": list(spec.include_paths),
        "output_dir": output_dir,
        "samples": spec.samples,
        "scorer": spec.scorer or (scorers.pop() if len(scorers) == 1 else None),
        "toxicity_samples": spec.toxicity_samples,
        "no_base": True,
        "no_cache": True,  # every answer computed again, none served from the cache
    }


def _close(old: Any, new: Any, tolerance: float) -> bool:
    if isinstance(old, bool) or isinstance(new, bool):
        return old == new
    if isinstance(old, int | float) and isinstance(new, int | float):
        if math.isnan(old) or math.isnan(new):
            return math.isnan(old) and math.isnan(new)
        return old == new or abs(old - new) <= tolerance
    if isinstance(old, list) and isinstance(new, list):
        return len(old) == len(new) and all(_close(a, b, tolerance) for a, b in zip(old, new, strict=True))
    return old == new


def _data(result: TaskResult) -> str:
    files = ", ".join(f"{f.split} {f.sha256[:12]}" for f in sorted(result.data_files, key=lambda f: f.split))
    return f"version {result.version}, {result.num_fewshot}-shot, data {files or '-'}"


def _checks(old: Run, new: Run, tolerance: float) -> list[tuple[str, str, str, str, str, bool]]:
    """(model, task, check, old, new, match) for everything the old record holds."""
    rows = []
    new_variants = {v.model: v for v in new.record.variants}
    for variant in old.record.variants:
        again = new_variants.get(variant.model)
        new_identity = again.identity[:12] if again else "missing"
        same = again is not None and again.identity == variant.identity
        rows.append((variant.model, "-", "identity", variant.identity[:12], new_identity, same))
        if again is None:
            continue
        for result in (r for r in old.record.results if r.variant == variant.identity):
            rerun = new.results.get((again.identity, result.task))
            if rerun is None:
                rows.append((variant.model, result.task, "result", "present", "missing", False))
                continue
            if result.kind == "task":
                rows.append((variant.model, result.task, "data", _data(result), _data(rerun), _data(result) == _data(rerun)))
            for metric, value in result.metrics.items():
                found = rerun.metrics.get(metric)
                new_value = found.value if found else None
                rows.append(
                    (
                        variant.model,
                        result.task,
                        metric,
                        repr(value.value),
                        repr(new_value),
                        found is not None and _close(value.value, new_value, tolerance),
                    )
                )
            if result.samples_file and rerun.samples_file:
                rows.append((variant.model, result.task, "sample scores", *_sample_check(old, result, new, rerun, tolerance)))
    return rows


def _sample_check(old: Run, result: TaskResult, new: Run, rerun: TaskResult, tolerance: float) -> tuple[str, str, bool]:
    before, after = read_rows(old, result), read_rows(new, rerun)
    differ = sum(
        1
        for key, row in before.items()
        if key not in after
        or after[key].doc_hash != row.doc_hash
        or after[key].values.keys() != row.values.keys()
        or not all(_close(v, after[key].values[m], tolerance) for m, v in row.values.items())
    ) + len(after.keys() - before.keys())
    return f"{len(before)} documents", ("all equal" if not differ else f"{differ} differ"), differ == 0


def _notes(old: Run, new: Run) -> list[str]:
    before, after = old.record.environment, new.record.environment
    notes = []
    if before.git_commit != after.git_commit or before.git_dirty != after.git_dirty:
        notes.append(
            f"code: recorded at {str(before.git_commit)[:12]}{' (dirty)' if before.git_dirty else ''},"
            f" rerun at {str(after.git_commit)[:12]}{' (dirty)' if after.git_dirty else ''}"
        )
    for name in sorted(before.packages.keys() | after.packages.keys()):
        if before.packages.get(name) != after.packages.get(name):
            notes.append(f"{name}: recorded {before.packages.get(name)}, rerun {after.packages.get(name)}")
    if (before.processor, before.accelerator) != (after.processor, after.accelerator):
        notes.append(f"hardware: recorded {before.processor}/{before.accelerator}, rerun {after.processor}/{after.accelerator}")
    return notes


def reproduce(
    path: str | Path,
    command: Sequence[str],
    batch_sizes: Sequence[int | str] | None = None,
    tolerance: float = 0.0,
    output_dir: str | Path | None = None,
    data_dir: str | None = None,
) -> Reproduction:
    """Rerun the record at `path` once per batch size (default: the record's) and compare."""

    if not tolerance >= 0:
        raise HarnessError(f"--tolerance must be a non-negative number, got {tolerance}")
    old = load_run(path)
    for result in old.record.results:  # its sample logs whole, before an hour of recomputing is compared with them
        if result.samples_file is not None:
            read_rows(old, result)
    sizes = list(batch_sizes or [old.record.spec.batch_size])
    known = known_names(task_manager(include=include_paths(list(old.record.spec.include_paths)), names=old.record.spec.tasks))
    for size in sizes:  # every spec is checked before any folder is made
        build_spec(_given(old, size, Path("."), data_dir), known)
    out = Path(output_dir) if output_dir else Path(tempfile.mkdtemp(prefix=f"harness-reproduce-{old.record.run_id}-"))
    specs = [build_spec(_given(old, size, out / f"batch-{size}", data_dir), known) for size in sizes]
    reruns: list[Rerun] = []
    per_rerun: list[list[tuple[str, str, str, str, str, bool]]] = []
    notes: list[str] = []
    for size, spec in zip(sizes, specs, strict=True):
        started = time.perf_counter()
        _, folder = run(spec, list(command))
        new = load_run(folder)
        reruns.append(Rerun(size, folder, round(time.perf_counter() - started, 2)))
        per_rerun.append(_checks(old, new, tolerance))
        notes = notes or _notes(old, new)
    checks = tuple(
        Check(model, task, check, old_value, tuple(r[i][4] for r in per_rerun), tuple(r[i][5] for r in per_rerun))
        for i, (model, task, check, old_value, _, _) in enumerate(per_rerun[0])
    )
    return Reproduction(old.record.run_id, tolerance, tuple(reruns), checks, tuple(notes))


def format_table(reproduction: Reproduction) -> str:
    from tabulate import tabulate

    headers = ["model", "task", "check", "old", *(f"new (batch {r.batch_size})" for r in reproduction.reruns), "match"]
    rows = [[c.model, c.task, c.check, c.old, *c.new, "yes" if all(c.match) else "NO"] for c in reproduction.checks]
    lines = [tabulate(rows, headers=headers, disable_numparse=True), ""]
    lines += [f"rerun at batch size {r.batch_size}: {r.folder / 'record.json'} ({r.seconds:.1f} s)" for r in reproduction.reruns]
    lines += [f"note: {n}" for n in reproduction.notes]
    failed = sum(not all(c.match) for c in reproduction.checks)
    tolerance = "exactly" if reproduction.tolerance == 0 else f"within {reproduction.tolerance:g}"
    lines.append(
        f"{reproduction.run}: everything matches {tolerance}"
        if reproduction.ok
        else f"{reproduction.run}: {failed} of {len(reproduction.checks)} checks do not match {tolerance}"
    )
    return "\n".join(lines)

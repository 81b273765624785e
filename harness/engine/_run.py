"""Run a RunSpec: check everything, evaluate each variant through lm-eval, write one run record.

Order matters for "nothing half-written": the spec, every model's files and identity, and every
task's data are checked before the output folder is touched. Results accumulate in a per-variant
request cache (committed chunk by chunk), so a killed run started again recomputes only what it had
not finished; the run folder is assembled in `<output-dir>/.incomplete/` and renamed into place.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import os
import re
import shutil
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness._util.files import atomic_write_text, canonical_json, publish_dir, sha256_json
from harness._util.paths import cache_dir
from harness.engine._grid import Executor, Workload
from harness.errors import HarnessError
from harness.lm import _shared_trunk
from harness.lm._harness_lm import HarnessLM
from harness.lm._request_cache import RequestCache
from harness.models import resolve_model
from harness.models.device import resolve_device
from harness.records import _environment
from harness.records._schema import (
    AppliedRecord,
    CostRecord,
    DataFileRecord,
    ExecutionRecord,
    MetricValue,
    RunRecord,
    RunSpecRecord,
    ScorerRecord,
    TaskResult,
    Timings,
    VariantRecord,
    write_record,
)
from harness.spec._spec import RunSpec
from harness.tasks import data, toxicity
from harness.tasks.index import task_manager
from harness.variant._variant import Variant

# Sample-log fields that carry the dataset's text; `public` sample logs leave them out.
_DOCUMENT_FIELDS = ("doc", "arguments", "target")


def quiet_libraries() -> None:
    """Keep the terminal for harness's progress and table: libraries only report errors."""
    import datasets
    import transformers

    for name in ("lm_eval", "datasets", "transformers", "accelerate", "huggingface_hub"):
        logging.getLogger(name).setLevel(logging.ERROR)
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()
    warnings.filterwarnings("ignore", module="lm_eval")


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def _stable(value: Any) -> Any:
    """A task config without memory addresses (functions named by module and qualified name, reprs
    such as lm-eval's for functools.partial stripped of `at 0x...`), so its hash is the same in
    every process."""
    if callable(value):
        named = value if hasattr(value, "__qualname__") else type(value)
        return f"{named.__module__}.{named.__qualname__}"
    if isinstance(value, str):
        return _ADDRESS.sub("", value)
    if isinstance(value, dict):
        return {str(k): _stable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_stable(v) for v in value]
    return value


@dataclass
class _LoadedTasks:
    top_level: list[Any]
    """What simple_evaluate is given: one Task or Group per requested name (tags expand to tasks)."""
    leaves: dict[str, Any]
    requested_as: dict[str, str]
    """Leaf task -> the name in --tasks that brought it in."""

    def samples(self, spec: RunSpec) -> dict[str, list[int]] | None:
        """lm-eval's per-task document indices when --limit has per-task overrides, else None."""
        if not spec.limit_per_task:
            return None
        overrides = dict(spec.limit_per_task)
        chosen = {}
        for name, task in self.leaves.items():
            n = overrides.get(name, overrides.get(self.requested_as[name], spec.limit))
            size = len(task.eval_docs)
            chosen[name] = list(range(size if n is None else min(n, size)))
        return chosen

    def documents(self, spec: RunSpec) -> dict[str, int]:
        """Documents each leaf task evaluates: the first N of its eval split."""
        if chosen := self.samples(spec):
            return {name: len(indices) for name, indices in chosen.items()}
        return {
            name: len(task.eval_docs) if spec.limit is None else min(spec.limit, len(task.eval_docs)) for name, task in self.leaves.items()
        }


def _load_tasks(manager, names: Sequence[str], spec: RunSpec) -> _LoadedTasks:
    """The requested tasks, with the run's settings that live in a task's config applied."""
    top_level: list[Any] = []
    leaves: dict[str, Any] = {}
    requested_as: dict[str, str] = {}
    for name in names:
        loaded = manager.load(name)
        if name in loaded["groups"]:
            top_level.append(loaded["groups"][name])
        else:
            top_level.extend(loaded["tasks"].values())
        leaves.update(loaded["tasks"])
        requested_as.update({leaf: name for leaf in loaded["tasks"] if leaf not in requested_as})
    for task in leaves.values():
        if toxicity.is_scored(task):
            toxicity.apply_samples(task, spec.toxicity_samples)
        _process_docs_once(task)
    return _LoadedTasks(top_level, leaves, requested_as)


def _process_docs_once(task: Any) -> None:
    """lm-eval applies a task's `process_docs` on every access to its documents (five times per
    arithmetic subtask even at --limit 1, each a map over 2,000 documents: 5 s of a 17 s run); the
    result is the same every time, so keep it per split. `functools.wraps` keeps the function's
    name, hence the task's config hash."""
    process = getattr(task.config, "process_docs", None)
    if not callable(process) or hasattr(process, "__wrapped__"):
        return
    done: dict[int, tuple[Any, Any]] = {}

    @functools.wraps(process)
    def once(dataset: Any) -> Any:
        if id(dataset) not in done:  # the dataset is kept with its result, so its id is not reused
            done[id(dataset)] = (dataset, process(dataset))
        return done[id(dataset)][1]

    task.config.process_docs = once


def _metrics(entry: dict[str, Any]) -> dict[str, MetricValue]:
    metrics = {}
    for key, value in entry.items():
        if "," not in key or "_stderr," in key:
            continue
        metric, filter_name = key.split(",", 1)
        name = metric if filter_name == "none" else key
        stderr = entry.get(f"{metric}_stderr,{filter_name}")
        metrics[name] = MetricValue(
            value=float(value) if isinstance(value, int | float) else None,
            stderr=float(stderr) if isinstance(stderr, int | float) else None,
        )
    return metrics


def _sample_line(sample: dict[str, Any], mode: str) -> str:
    kept = sample if mode == "full" else {k: v for k, v in sample.items() if k not in _DOCUMENT_FIELDS}
    return json.dumps(kept, ensure_ascii=False, default=str)


def _refuse_fit_overlap(variants: Sequence[Variant], files: dict[str, list[data.ResolvedFile]]) -> None:
    """A variant fitted on a file that a task evaluates would be scored on its own training data."""
    for variant in variants:
        fitted_on = {sha: path for path, sha in variant.fit_files().items()}
        for task, resolved in files.items():
            for f in resolved:
                if f.sha256 in fitted_on:
                    raise HarnessError(
                        f"{variant.spec.model} was fitted on {fitted_on[f.sha256]}, which task {task} evaluates:"
                        " fitting and evaluation data must not overlap"
                    )


def run(spec: RunSpec, command: Sequence[str], executor: Executor | None = None) -> tuple[RunRecord, Path]:
    """Evaluate every variant of `spec` on its tasks; return the record and its run folder.
    An `executor` (harness.engine._grid) computes the requests elsewhere first, into the request caches."""
    import lm_eval

    started = time.perf_counter()
    created = dt.datetime.now(dt.UTC)
    quiet_libraries()
    if spec.data_dir is not None:
        # Wrappers' calibration text and lm-eval's own loading read the data directory from here.
        os.environ[data.DATA_DIR_ENV] = str(spec.data_dir)
    environment = _environment.capture()  # the code and packages as they are when the run starts
    device = resolve_device(spec.device)
    manager = task_manager(spec.data_dir)
    variants = [Variant(v, resolve_model(v.base)) for v in spec.variants]
    first_tasks = _load_tasks(manager, spec.tasks, spec)
    files = {name: data.resolve_task_files(task.config.dataset_kwargs, spec.data_dir) for name, task in first_tasks.leaves.items()}
    _refuse_fit_overlap(variants, files)
    task_hashes = {
        name: sha256_json(
            {
                "config": _stable(task.dump_config()),
                "data": [f.sha256 for f in files[name]],
                "num_fewshot": spec.num_fewshot,
                "seed": spec.seed,
            }
        )
        for name, task in first_tasks.leaves.items()
    }
    scorer = None
    if any(toxicity.is_scored(task) for task in first_tasks.leaves.values()):
        identity = toxicity.select_scorer(spec.scorer).identity  # missing weights fail here, before generating
        scorer = ScorerRecord(name=identity.name, version=identity.version, weights_sha256=identity.weights_sha256)
    spec_record = RunSpecRecord(
        models=tuple(v.model for v in spec.variants),
        tasks=spec.tasks,
        limit=spec.limit,
        limit_per_task=dict(spec.limit_per_task),
        num_fewshot=spec.num_fewshot,
        batch_size=spec.batch_size,
        device=device,
        seed=spec.seed,
        data_dir=str(spec.data_dir) if spec.data_dir else None,
        samples=spec.samples,
        scorer=spec.scorer,
        toxicity_samples=spec.toxicity_samples,
    )
    spec_hash = sha256_json({"spec": spec_record.model_dump(mode="json"), "variants": [v.identity for v in variants], "tasks": task_hashes})
    scorers = {name: scorer for name, task in first_tasks.leaves.items() if toxicity.is_scored(task)}
    setup_seconds = time.perf_counter() - started
    execution: ExecutionRecord | None = None
    if executor is not None:
        workload = Workload(
            spec=spec,
            variants=tuple(variants),
            documents=first_tasks.documents(spec),
            requested_as=dict(first_tasks.requested_as),
            task_hashes=task_hashes,
            device=device,
        )
        execution = executor(workload)

    staging = spec.output_dir / ".incomplete" / spec_hash[:16]
    if staging.exists():  # left by a killed run of the same spec; its work is in the cache
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    try:
        variant_records, results, raw = [], [], {}
        groups = _shared_trunk.plan(variants)  # head-only variants of one base: one decoder pass
        for index, variant in enumerate(variants):
            loaded_tasks = first_tasks if index == 0 else _load_tasks(manager, spec.tasks, spec)
            cache = RequestCache(cache_dir() / "requests", variant.identity)
            members = [
                _shared_trunk.Member(variants[i], RequestCache(cache_dir() / "requests", variants[i].identity))
                for i in groups.get(index, ())
            ]
            lm = HarnessLM(
                variant=variant,
                cache=cache,
                task_hashes=task_hashes,
                batch_size=spec.batch_size,
                device=device,
                seed=spec.seed,
                members=members,
            )
            scored_before = (toxicity.CLOCK.seconds, toxicity.CLOCK.texts)
            try:
                out = lm_eval.simple_evaluate(
                    model=lm,
                    tasks=loaded_tasks.top_level,
                    num_fewshot=spec.num_fewshot,
                    limit=None if spec.limit_per_task else spec.limit,
                    samples=loaded_tasks.samples(spec),
                    task_manager=manager,
                    log_samples=True,
                    random_seed=spec.seed,
                    numpy_random_seed=spec.seed,
                    torch_random_seed=spec.seed,
                    fewshot_random_seed=spec.seed,
                )
                cost = lm.loaded.cost if lm.loaded else None
                if cost is None and (known := cache.get_fact("cost")) is not None:
                    cost = CostRecord.model_validate(known)
                applied = lm.loaded.applied_records() if lm.loaded else _known_applied(cache)
            finally:
                cache.close()
                for member in members:
                    member.cache.close()
            variant_records.append(
                VariantRecord(
                    identity=variant.identity,
                    model=variant.spec.model,
                    base_origin=variant.base.origin,
                    base_path=str(variant.base.path),
                    intervention=variant.intervention,
                    load_seconds=lm.loaded.seconds if lm.loaded else None,
                    load_converted=bool(lm.loaded and lm.loaded.converted),
                    scoring_seconds=round(toxicity.CLOCK.seconds - scored_before[0], 4) if scorer else None,
                    texts_scored=toxicity.CLOCK.texts - scored_before[1] if scorer else None,
                    cost=cost,
                    applied=applied,
                )
            )
            results.extend(_task_results(out, variant, lm, files, task_hashes, staging, spec.samples, scorers))
            raw[variant.identity] = {
                key: out.get(key) for key in ("results", "groups", "group_subtasks", "versions", "n-shot", "higher_is_better", "n-samples")
            }
        run_id = f"{created:%Y%m%dT%H%M%SZ}-{spec_hash[:8]}"
        record = RunRecord(
            run_id=run_id,
            created_at=created.isoformat(),
            command=tuple(command),
            spec_given={k: str(v) if isinstance(v, Path) else v for k, v in spec.given.items()},
            spec=spec_record,
            variants=tuple(variant_records),
            results=tuple(results),
            lm_eval=json.loads(canonical_json(raw)),
            environment=environment,
            timings=Timings(total_seconds=time.perf_counter() - started, setup_seconds=setup_seconds),
            execution=execution,
        )
        write_record(record, staging)
        final = spec.output_dir / run_id
        publish_dir(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return record, final


def _known_applied(cache: RequestCache) -> tuple[AppliedRecord, ...]:
    """A variant's wrapper facts when it was never built: as its shared-trunk leader recorded them."""
    return tuple(AppliedRecord.model_validate(a) for a in cache.get_fact("applied") or ())


def _task_results(
    out: dict[str, Any],
    variant: Variant,
    lm: HarnessLM,
    files: dict[str, list[data.ResolvedFile]],
    task_hashes: dict[str, str],
    staging: Path,
    mode: str,
    scorers: dict[str, ScorerRecord | None],
) -> list[TaskResult]:
    results = []
    short = variant.identity[:12]
    for name, entry in out["results"].items():
        is_group = name in out.get("groups", {}) or name not in task_hashes
        samples_file = None
        if not is_group:
            samples_file = f"samples/{short}/{name}.jsonl"
            lines = [_sample_line(s, mode) for s in out["samples"][name]]
            atomic_write_text(staging / samples_file, "".join(line + "\n" for line in lines))
        n = out.get("n-samples", {}).get(name, {})
        version = out.get("versions", {}).get(name)
        results.append(
            TaskResult(
                variant=variant.identity,
                task=name,
                kind="group" if is_group else "task",
                version=str(version) if version is not None else None,
                num_fewshot=out.get("n-shot", {}).get(name),
                n_samples=n.get("effective") if n else None,
                config_hash=None if is_group else task_hashes[name],
                data_files=()
                if is_group
                else tuple(
                    DataFileRecord(
                        split=f.file.split,
                        path=f.file.local if f.origin == "data_dir" else f"{f.file.hub_repo}/{f.file.hub_path}",
                        origin=f.origin,
                        sha256=f.sha256,
                    )
                    for f in files[name]
                ),
                metrics=_metrics(entry),
                higher_is_better=out.get("higher_is_better", {}).get(name, {}) or {},
                samples_file=samples_file,
                seconds=None if is_group else round(lm.task_seconds.get(name, 0.0), 4),
                requests_computed=None if is_group else lm.task_computed.get(name, 0),
                requests_cached=None if is_group else lm.task_cached.get(name, 0),
                scorer=scorers.get(name),
            )
        )
    return results

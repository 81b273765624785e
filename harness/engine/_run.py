"""Run a RunSpec: check everything, evaluate each variant through lm-eval, write one run record.

Order matters for "nothing half-written": the spec, every model's files and identity, and every
task's data are checked before the output folder is touched. Results accumulate in a per-variant
request cache (committed chunk by chunk), so a killed run started again recomputes only what it had
not finished; the run folder is assembled in `<output-dir>/.incomplete/` and renamed into place.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any

from harness._util.code import callable_digest
from harness._util.files import atomic_write_text, canonical_json, publish_new_dir, sha256_json
from harness._util.paths import cache_dir
from harness.engine._evaluate import LoadedTasks, evaluate, load_tasks, process_kept
from harness.engine._grid import Executor, Workload
from harness.errors import HarnessError
from harness.lm import _shared_trunk
from harness.lm._answer_context import open_request_cache, variant_code_digest
from harness.lm._harness_lm import HarnessLM
from harness.lm._request_cache import RequestCache
from harness.models import resolve_model
from harness.records import _environment
from harness.records._environment import Environment
from harness.records._schema import (
    AppliedRecord,
    CostRecord,
    DataFileRecord,
    MetricValue,
    RunRecord,
    RunSpecRecord,
    ScorerRecord,
    TaskResult,
    Timings,
    VariantRecord,
    write_record,
)
from harness.spec._spec import RunSpec, check_fewshot, check_run
from harness.tasks import data, toxicity
from harness.tasks.index import task_files, task_manager
from harness.variant._variant import Variant

# Sample-log fields that carry the dataset's text; `public` sample logs leave them out.
_DOCUMENT_FIELDS = ("doc", "arguments", "target")
# What the record keeps of lm-eval's own output, per variant.
_LM_EVAL_KEYS = ("results", "groups", "group_subtasks", "versions", "n-shot", "higher_is_better", "n-samples")

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def _stable(value: Any) -> Any:
    """A task config without memory addresses (functions named by module and qualified name, reprs
    such as lm-eval's for functools.partial stripped of `at 0x...`), so its hash is the same in
    every process and checkout."""
    if callable(value):
        named = value if hasattr(value, "__qualname__") else type(value)
        # lm-eval names a task folder's module (`!function utils.f`) by its file's absolute path:
        # its file name alone stays (the code itself is in the hash by its digest).
        return f"{Path(named.__module__).name}.{named.__qualname__}"
    if isinstance(value, str):
        return _ADDRESS.sub("", value)
    if isinstance(value, dict):
        return {str(k): _stable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_stable(v) for v in value]
    return value


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


@dataclass(frozen=True)
class _Plan:
    """A run checked and resolved, before anything is evaluated or written."""

    spec: RunSpec
    environment: Environment
    device: str
    manager: Any
    variants: list[Variant]
    tasks: LoadedTasks
    """The tasks as loaded for the checks; the first variant is evaluated on them."""
    files: dict[str, list[data.ResolvedFile]]
    task_hashes: dict[str, str]
    scorer: ScorerRecord | None
    spec_record: RunSpecRecord
    spec_hash: str
    requests: Path
    """The folder of the request caches (a temporary one with --no-cache)."""

    @property
    def scorers(self) -> dict[str, ScorerRecord | None]:
        """Leaf task -> the scorer of its generations, for the tasks scored by one."""
        return {name: self.scorer for name, task in self.tasks.leaves.items() if toxicity.is_scored(task)}

    def workload(self) -> Workload:
        return Workload(
            spec=self.spec,
            variants=tuple(self.variants),
            documents=self.tasks.documents(self.spec),
            requested_as=dict(self.tasks.requested_as),
            task_hashes=self.task_hashes,
            device=self.device,
        )


def run(spec: RunSpec, command: Sequence[str], executor: Executor | None = None) -> tuple[RunRecord, Path]:
    """Evaluate every variant of `spec` on its tasks; return the record and its run folder.
    An `executor` (harness.engine._grid) computes the requests elsewhere first, into the request caches."""
    started = time.perf_counter()
    created = dt.datetime.now(dt.UTC)
    if spec.no_cache and executor is not None:
        raise HarnessError("--no-cache cannot be used with --executor ray: its workers hand their answers over through the request cache")
    with process_kept(spec) as log, _requests_folder(spec) as requests:
        plan = _resolve(spec, requests)
        setup_seconds = time.perf_counter() - started
        execution = executor(plan.workload()) if executor is not None else None
        staging = _staging_folder(plan)
        try:
            variant_records, results, raw = _evaluate_variants(plan, staging)
            timings = Timings(total_seconds=time.perf_counter() - started, setup_seconds=setup_seconds)
            record = RunRecord(
                run_id=f"{created:%Y%m%dT%H%M%SZ}-{plan.spec_hash[:8]}",
                created_at=created.isoformat(),
                command=tuple(command),
                spec_given={k: str(v) if isinstance(v, Path) else v for k, v in spec.given.items()},
                spec=plan.spec_record,
                variants=tuple(variant_records),
                results=tuple(results),
                lm_eval=json.loads(canonical_json(raw)),
                environment=plan.environment,
                timings=timings,
                execution=execution,
            )
            log.save(staging)
            return _publish(record, staging, spec.output_dir)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise


@contextmanager
def _requests_folder(spec: RunSpec) -> Iterator[Path]:
    """Where this run's request caches are: the shared cache, or with --no-cache a folder of its
    own that goes when the run ends (so every answer is computed and none is kept)."""
    if not spec.no_cache:
        yield cache_dir() / "requests"
        return
    folder = Path(tempfile.mkdtemp(prefix="harness-no-cache-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _resolve(spec: RunSpec, requests: Path) -> _Plan:
    """Resolve and check models, tasks, data and scorer first, so a bad spec writes nothing."""
    environment = _environment.capture()  # the code and packages as they are when the run starts
    device = check_run(spec)  # the device, the bases' files and every wrapper against its base's shape
    manager = task_manager(spec.data_dir, spec.include_path, spec.tasks)
    variants = [Variant(v, resolve_model(v.base)) for v in spec.variants]
    tasks = load_tasks(manager, spec.tasks, spec)
    check_fewshot(tasks.leaves, spec.num_fewshot)
    files = {name: task_files(task.config, spec.data_dir) for name, task in tasks.leaves.items()}
    _refuse_fit_overlap(variants, files)
    task_hashes = _task_hashes(spec, tasks, files)
    scorer = _scorer(spec, tasks)
    spec_record = _spec_record(spec, device)
    spec_hash = sha256_json({"spec": spec_record.model_dump(mode="json"), "variants": [v.identity for v in variants], "tasks": task_hashes})
    return _Plan(spec, environment, device, manager, variants, tasks, files, task_hashes, scorer, spec_record, spec_hash, requests)


def _task_hashes(spec: RunSpec, tasks: LoadedTasks, files: dict[str, list[data.ResolvedFile]]) -> dict[str, str]:
    """Leaf task -> the hash of what fixes its requests and their scoring: config, the code of its
    functions, data files, few-shot count, seed. Nothing in it names a folder of this machine, so a
    task hashes the same in every checkout."""
    return {
        name: sha256_json(
            {
                "config": _stable(_without_paths(task.dump_config())),
                "code": sorted({d for f in _functions(task.config) if (d := callable_digest(f)) is not None}),
                "data": [f.sha256 for f in files[name]],
                "num_fewshot": spec.num_fewshot,
                "seed": spec.seed,
            }
        )
        for name, task in tasks.leaves.items()
    }


def _without_paths(config: dict[str, Any]) -> dict[str, Any]:
    """A task's dumped config without this machine's folders: the YAML file it came from named by
    its file name alone (lm-eval keeps the absolute path in `metadata.config_source`), and the data
    directory left out (`metadata.data_dir`: the data files' sha256s stand for what was read)."""
    metadata = config.get("metadata")
    if not isinstance(metadata, dict):
        return config
    kept = {k: v for k, v in metadata.items() if k != "data_dir"}
    if isinstance(kept.get("config_source"), str):
        kept["config_source"] = Path(kept["config_source"]).name
    return {**config, "metadata": kept}


def _functions(value: Any) -> Iterator[Any]:
    """Every callable in a task's config (its doc_to_text, process_results, custom_dataset, ...)."""
    if callable(value) and not isinstance(value, type):
        yield value
    elif is_dataclass(value) and not isinstance(value, type):
        for item in fields(value):
            yield from _functions(getattr(value, item.name))
    elif isinstance(value, dict):
        for item in value.values():
            yield from _functions(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _functions(item)


def _scorer(spec: RunSpec, tasks: LoadedTasks) -> ScorerRecord | None:
    """The toxicity scorer, loaded now if a task needs it, so missing weights fail before generating."""
    if not any(toxicity.is_scored(task) for task in tasks.leaves.values()):
        return None
    identity = toxicity.select_scorer(spec.scorer).identity
    return ScorerRecord(name=identity.name, version=identity.version, weights_sha256=identity.weights_sha256)


def _spec_record(spec: RunSpec, device: str) -> RunSpecRecord:
    return RunSpecRecord(
        models=tuple(v.model for v in spec.variants),
        tasks=spec.tasks,
        limit=spec.limit,
        limit_per_task=dict(spec.limit_per_task),
        num_fewshot=spec.num_fewshot,
        batch_size=spec.batch_size,
        device=device,
        seed=spec.seed,
        data_dir=str(spec.data_dir) if spec.data_dir else None,
        include_paths=tuple(str(p) for p in spec.include_path),
        samples=spec.samples,
        scorer=spec.scorer,
        toxicity_samples=spec.toxicity_samples,
    )


def _staging_folder(plan: _Plan) -> Path:
    """A new folder, this process's own, to assemble the run in. Leftovers of killed runs of the
    same spec go (their work is in the request cache); another live process's folder stays."""
    root = plan.spec.output_dir / ".incomplete"
    prefix = plan.spec_hash[:16]
    for leftover in root.glob(f"{prefix}.*"):
        if not _alive(leftover.name.split(".")[1]):
            shutil.rmtree(leftover, ignore_errors=True)
    staging = root / f"{prefix}.{os.getpid()}.{secrets.token_hex(4)}"
    staging.mkdir(parents=True)
    return staging


def _alive(pid: str) -> bool:
    """Whether process `pid` (from a staging folder's name) is running on this machine."""
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def _evaluate_variants(plan: _Plan, staging: Path) -> tuple[list[VariantRecord], list[TaskResult], dict[str, Any]]:
    """Evaluate each variant in turn (head-only variants of a base ride on their leader's passes)."""
    variant_records: list[VariantRecord] = []
    results: list[TaskResult] = []
    raw: dict[str, Any] = {}
    groups = _shared_trunk.plan(plan.variants)
    for index, variant in enumerate(plan.variants):
        # An evaluation leaves its requests on lm-eval's task objects: every other variant gets fresh ones.
        tasks = plan.tasks if index == 0 else load_tasks(plan.manager, plan.spec.tasks, plan.spec)
        members = [plan.variants[i] for i in groups.get(index, ())]
        variant_record, out, lm = _evaluate_variant(plan, variant, tasks, members)
        variant_records.append(variant_record)
        results.extend(_task_results(out, variant, lm, plan.files, plan.task_hashes, staging, plan.spec.samples, plan.scorers))
        raw[variant.identity] = {key: out.get(key) for key in _LM_EVAL_KEYS}
    return variant_records, results, raw


def _requests_of(plan: _Plan, variant: Variant) -> RequestCache:
    return open_request_cache(plan.requests, variant, plan.device, plan.spec.batch_size)


def _evaluate_variant(
    plan: _Plan, variant: Variant, tasks: LoadedTasks, members: Sequence[Variant]
) -> tuple[VariantRecord, dict[str, Any], HarnessLM]:
    """Evaluate one variant (and its shared-trunk `members`, into their caches); describe it for the record."""
    spec = plan.spec
    cache = _requests_of(plan, variant)
    group = [_shared_trunk.Member(member, _requests_of(plan, member)) for member in members]
    lm = HarnessLM(
        variant=variant,
        cache=cache,
        task_hashes=plan.task_hashes,
        batch_size=spec.batch_size,
        device=plan.device,
        seed=spec.seed,
        members=group,
    )
    scored_before = (toxicity.CLOCK.seconds, toxicity.CLOCK.texts)
    try:
        out = evaluate(
            lm, tasks.top_level, spec, plan.manager, limit=None if spec.limit_per_task else spec.limit, samples=tasks.samples(spec)
        )
    except HarnessError as exc:  # said in one line: which variant it was
        if variant.spec.model in str(exc):
            raise
        raise HarnessError(f"{variant.spec.model}: {exc}") from None
    else:
        cost = lm.loaded.cost if lm.loaded else None
        if cost is None and (known := cache.get_fact("cost")) is not None:
            cost = CostRecord.model_validate(known)
        applied = lm.loaded.applied_records() if lm.loaded else _known_applied(cache)
    finally:
        cache.close()
        for member in group:
            member.cache.close()
    scored = plan.scorer is not None
    record = VariantRecord(
        identity=variant.identity,
        model=variant.spec.model,
        base_origin=variant.base.origin,
        base_path=str(variant.base.path),
        intervention=variant.intervention,
        load_seconds=lm.loaded.seconds if lm.loaded else None,
        load_converted=bool(lm.loaded and lm.loaded.converted),
        scoring_seconds=round(toxicity.CLOCK.seconds - scored_before[0], 4) if scored else None,
        texts_scored=toxicity.CLOCK.texts - scored_before[1] if scored else None,
        cost=cost,
        applied=applied,
        code_digest=variant_code_digest(variant),
    )
    return record, out, lm


def _publish(record: RunRecord, staging: Path, output_dir: Path) -> tuple[RunRecord, Path]:
    """Write the record and rename the staging folder into place, so a run folder is whole or
    absent. A run id already taken (the same spec started in the same second) gets a suffix:
    no run replaces another."""
    for attempt in range(1, 1000):
        if attempt > 1:
            record = record.model_copy(update={"run_id": f"{record.run_id.rsplit('_', 1)[0]}_{attempt}"})
        write_record(record, staging)
        final = output_dir / record.run_id
        if publish_new_dir(staging, final):
            return record, final
    raise HarnessError(f"no free run id for {record.run_id} in {output_dir}")


def _known_applied(cache: RequestCache) -> tuple[AppliedRecord, ...]:
    """A variant's wrapper facts when this run never built it: as they were kept with its answers
    (by the run that built it, a Ray worker, or its shared-trunk leader)."""
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
    """The record's rows for one variant's lm-eval output, writing each leaf task's sample log to `staging`."""
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

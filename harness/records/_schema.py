"""The run record: what one evaluation produced and what is needed to reproduce it.

Typed, frozen and documented (pydantic), versioned by `schema_version`, validated on read, and
exported as JSON Schema (`harness.records._schema.record_json_schema()`). A run folder holds:

    <output-dir>/<run_id>/record.json                      this schema
    <output-dir>/<run_id>/samples/<variant>/<task>.jsonl   one line per document (see SampleMode)

Bump SCHEMA_VERSION's major number when a field changes meaning or disappears, the minor one when
a field is added.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer, model_validator

from harness._util.files import atomic_write_text, sha256_json
from harness.records._formats import Identity, SafeName, SamplesFile, Sha256, Timestamp

SCHEMA_VERSION = "1.5"

SampleMode = Literal["public", "full"]
"""`public`: document ids, hashes, scores and model outputs only (what may be committed: the datasets
are not ours to republish); `full`: also each document, its prompt arguments and its target."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class BaseIdentity(_Frozen):
    """The part of a base model that decides its outputs."""

    weights_sha256: str
    """sha256 of the GGUF file, or of the sorted (name, sha256) list of its safetensors files."""
    format: Literal["gguf", "safetensors"]
    dtype: str
    """The dtype the weights are computed in (GGUF files are dequantised to it)."""


class WrapperRecord(_Frozen):
    """One applied wrapper: its registered name, resolved parameters and artifact hashes."""

    name: str
    params: dict[str, str] = Field(default_factory=dict)
    """Every declared parameter, defaults filled in, in canonical text (so `bits=4` and
    `bits=4,group=0` are one variant when 0 is the default)."""
    artifacts: dict[str, str] = Field(default_factory=dict)
    """Artifact name -> sha256 (steering vectors, calibration data, merge sources)."""
    plugin: str | None = None
    """A wrapper not of harness: `NAME==VERSION` of the distribution that registered it (a plugin),
    else the module it was defined in (schema 1.5). None for harness's own, and then left out of
    the record, so their records, identities and everything made from them are as before."""

    @model_serializer(mode="wrap")
    def _plugin_when_set(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        dumped: dict[str, Any] = handler(self)
        if dumped.get("plugin") is None:
            dumped.pop("plugin", None)
        return dumped


class InterventionRecord(_Frozen):
    """The hashable description of a variant. Its hash is the variant's identity everywhere."""

    base: BaseIdentity
    wrappers: tuple[WrapperRecord, ...] = ()

    def identity(self) -> str:
        return sha256_json(self.model_dump(mode="json"))


class CostRecord(_Frozen):
    """What a variant costs, as built."""

    parameters: int
    """Distinct parameters (tied weights counted once)."""
    weight_bytes: int
    """Bytes of the weights as the wrappers store them (a 4-bit group-64 weight: half a byte per value
    plus its scales), not as the float copy that simulates them."""
    flops_per_token: float
    """Forward FLOPs per token of the matrix multiplies actually executed (2 per weight used; an exited
    variant executes fewer layers); attention's context-length-dependent part is left out."""


class AppliedRecord(_Frozen):
    """What one wrapper did when applied (facts chosen or measured, not its parameters)."""

    name: str
    info: dict[str, Any] = Field(default_factory=dict)


class VariantRecord(_Frozen):
    identity: Identity
    """sha256 of `intervention`; names the variant's samples folder and request cache."""
    model: str
    """The model string as given."""
    base_origin: str
    """Where the base came from: package:NAME, hub:REPO@COMMIT or local."""
    base_path: str
    intervention: InterventionRecord
    load_seconds: float | None
    """Wall time to build the variant; None when every request came from the cache and nothing was loaded."""
    load_converted: bool
    """True when this run dequantised a GGUF (a cold load)."""
    scoring_seconds: float | None = None
    """Time the toxicity scorer took over this variant's outputs (schema 1.1; None: nothing scored)."""
    texts_scored: int | None = None
    cost: CostRecord | None = None
    """None when every answer came from the cache of a run that predates cost accounting."""
    applied: tuple[AppliedRecord, ...] = ()
    code_digest: Sha256 | None = None
    """sha256 of the source that scored this variant: the scoring path and its wrappers' modules,
    with what they import (harness.lm._answer_context; part of its request-cache keys; schema 1.4)."""

    @model_validator(mode="after")
    def _identity_is_the_intervention_hash(self) -> VariantRecord:
        if self.identity != self.intervention.identity():
            raise ValueError(f"variant {self.model!r}: identity is not the sha256 of its intervention record")
        return self


class DataFileRecord(_Frozen):
    split: str
    path: str
    """Path inside the data directory (or the hub file path when origin is `hub`)."""
    origin: Literal["data_dir", "hub"]
    sha256: str


UNIT_INTERVAL_METRICS = frozenset({"acc", "acc_norm", "exact_match", "toxicity_probability", "expected_max_toxicity", "toxic_fraction"})
"""Metrics that are proportions or means of [0, 1] scores (the others, perplexities, are unbounded)."""


class MetricValue(_Frozen):
    value: float | None
    stderr: float | None
    """lm-eval's stderr (bootstrap or analytic); None where lm-eval gives none."""


class ScorerRecord(_Frozen):
    """The classifier that scored a task's outputs (toxicity tasks)."""

    name: str
    version: str
    """Package and version the weights come from."""
    weights_sha256: str


class TaskResult(_Frozen):
    """One variant on one task or group."""

    variant: Identity
    """The variant's identity."""
    task: SafeName
    kind: Literal["task", "group"]
    version: str | None
    num_fewshot: int | None
    n_samples: int | None
    """Documents evaluated (after --limit)."""
    config_hash: str | None
    """sha256 of the task's final lm-eval config and its data files' hashes (None for groups)."""
    data_files: tuple[DataFileRecord, ...] = ()
    metrics: dict[str, MetricValue]
    higher_is_better: dict[str, bool] = Field(default_factory=dict)
    samples_file: SamplesFile | None
    """Sample log, relative to the run folder (None for groups)."""
    seconds: float | None
    """Time spent computing this task's requests (cache hits cost ~0)."""
    requests_computed: int | None
    requests_cached: int | None
    scorer: ScorerRecord | None = None
    """Set for tasks whose metrics come from a classifier; results from two scorers never compare."""


class RunSpecRecord(_Frozen):
    """The resolved specification of the run."""

    models: tuple[str, ...]
    tasks: tuple[str, ...]
    limit: int | None
    limit_per_task: dict[str, int] = Field(default_factory=dict)
    """Overrides of `limit` for the named tasks or groups (schema 1.1)."""
    num_fewshot: int | None
    batch_size: int | str
    device: str
    seed: int
    data_dir: str | None
    include_paths: tuple[str, ...] = ()
    """The `--include-path` folders whose tasks the run could name (schema 1.5)."""
    samples: SampleMode
    scorer: str | None = None
    """The toxicity scorer asked for (None: the default; TaskResult.scorer says which ran)."""
    toxicity_samples: int | str | None = None
    """Continuations per toxicity prompt, or `greedy` (schema 1.1)."""


class Environment(_Frozen):
    harness_version: str
    git_commit: str | None
    git_dirty: bool | None
    code_digest: Sha256 | None = None
    """sha256 of harness's whole source as it ran (harness._util.code.package_digest; schema 1.4)."""
    git_diff_sha256: Sha256 | None = None
    """sha256 of `git diff HEAD` when the checkout was dirty: which uncommitted change ran (schema 1.4)."""
    python: str
    packages: dict[str, str]
    """Versions of torch, transformers, lm_eval, datasets, ... as imported."""
    platform: str
    processor: str
    cpu_count: int
    memory_gb: float | None
    accelerator: str | None
    torch_threads: int


class Timings(_Frozen):
    total_seconds: float
    setup_seconds: float
    """Spec checks, model resolution (hashing) and task loading, before the first variant."""


class ShardRecord(_Frozen):
    """One document shard of one variant on one task, as a scale-out executor ran it (schema 1.3)."""

    variant: Identity
    """The variant's identity."""
    task: SafeName
    first: int
    """Index of the shard's first document."""
    end: int
    """One past its last document."""
    status: Literal["computed", "resumed"]
    """`resumed`: an earlier, interrupted run had stored its results; this run only read them."""
    seconds: float | None = None
    """Wall time on the worker, the variant's build excluded (None when resumed)."""
    load_seconds: float | None = None
    """Time the worker took to build the variant when this shard was the first to need it there."""
    worker: str | None = None
    """`NODE:PID` of the worker process that ran it."""
    requests_computed: int | None = None
    requests_cached: int | None = None
    """Requests the worker found in its own cache (a shard retried after its worker died)."""
    worker_peak_rss_bytes: int | None = None
    """Peak resident memory of that worker process so far."""
    finished_seconds: float | None = None
    """When the driver stored its results, in seconds from the start of the cluster phase."""


class ExecutionRecord(_Frozen):
    """How a scale-out executor spread the run's grid; the results themselves are the same as a
    local run's (schema 1.3)."""

    executor: Literal["ray"]
    address: str | None
    """The cluster joined; None: a local cluster started for the run."""
    workers: int
    max_models_per_worker: int | None
    """As given; None: each worker derived it from the measured size of the first model it built."""
    shard_size: int
    """Documents per shard (the last shard of a task may hold fewer)."""
    models_built: int
    """Variant builds on all workers together (a variant is built once per worker that needs it)."""
    seconds: float
    """Wall time of the cluster phase, up to the last shard's results stored."""
    driver_peak_rss_bytes: int
    shards: tuple[ShardRecord, ...]


class RunRecord(_Frozen):
    """Everything one `harness eval` produced and needs to be reproduced."""

    schema_version: str = SCHEMA_VERSION
    run_id: SafeName
    created_at: Timestamp
    """UTC, ISO 8601."""
    command: tuple[str, ...]
    """argv as given."""
    spec_given: dict[str, Any]
    """The flags and --config fields as the user gave them, before defaults."""
    spec: RunSpecRecord
    variants: tuple[VariantRecord, ...]
    results: tuple[TaskResult, ...]
    lm_eval: dict[str, Any]
    """Per variant identity: lm-eval's own results, groups, versions, n-shot, higher_is_better, n-samples."""
    environment: Environment
    timings: Timings
    execution: ExecutionRecord | None = None
    """Set when the run's requests were computed by a scale-out executor (`--executor ray`)."""

    @model_validator(mode="after")
    def _lm_eval_as_readers_take_it(self) -> RunRecord:
        """Readers take each variant's group tree from here: groups name lists of tasks."""
        for identity, raw in self.lm_eval.items():
            if not isinstance(raw, dict):
                raise ValueError(f"lm_eval[{identity[:12]!r}] is not an object")
            groups = raw.get("group_subtasks")
            if groups is not None and not (
                isinstance(groups, dict) and all(isinstance(m, list) and all(isinstance(t, str) for t in m) for m in groups.values())
            ):
                raise ValueError(f"lm_eval[{identity[:12]!r}].group_subtasks is not a mapping of group to task names")
            _check_acyclic(groups or {}, identity)
        return self

    @model_validator(mode="after")
    def _results_name_variants_of_this_run(self) -> RunRecord:
        identities = {v.identity for v in self.variants}
        for result in self.results:
            if result.variant not in identities:
                raise ValueError(f"result {result.task!r} names variant {result.variant[:12]} that is not in the record")
            if result.samples_file is not None and not result.samples_file.startswith(f"samples/{result.variant[:12]}/"):
                raise ValueError(f"result {result.task!r}: sample log {result.samples_file!r} is not in its variant's folder")
        return self


def _check_acyclic(groups: dict[str, list[str]], identity: str) -> None:
    """A group tree, not a graph with a cycle (readers expand groups into their tasks)."""
    done: set[str] = set()

    def visit(group: str, path: tuple[str, ...]) -> None:
        if group in path:
            raise ValueError(f"lm_eval[{identity[:12]!r}].group_subtasks: group {group!r} contains itself")
        if group in done:
            return
        for member in groups.get(group, ()):
            visit(member, (*path, group))
        done.add(group)

    for group in groups:
        visit(group, ())


def record_json_schema() -> dict[str, Any]:
    return RunRecord.model_json_schema()


def write_record(record: RunRecord, run_dir: Path) -> Path:
    path = run_dir / "record.json"
    atomic_write_text(path, record.model_dump_json(indent=2) + "\n")
    return path


def read_record(path: Path) -> RunRecord:
    """Read and validate a record (a run folder or its record.json)."""
    path = Path(path)
    if path.is_dir():
        path = path / "record.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a run record is a JSON object, not {type(data).__name__}")
    major = str(data.get("schema_version", "")).split(".")[0]
    if major != SCHEMA_VERSION.split(".")[0]:
        raise ValueError(f"{path}: schema_version {data.get('schema_version')!r} is not {SCHEMA_VERSION}")
    return RunRecord.model_validate(data)

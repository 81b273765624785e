"""Export a run to every_eval_ever's shared results schema (v0.2.0), so tools outside harness can
read our numbers.

As in every_eval_ever's own lm-eval converter, there is one file per model (here: variant) and task
(a group counts as a task), `<out>/<variant identity[:12]>/<task>.json`, and one evaluation result
per metric, named by the task (`task/filter` for a filtered metric) and described by the metric. What
the schema has no field for goes into its free-form string maps: the variant's identity, base
lineage and intervention record into `model_info.additional_details` (the record's canonical JSON,
whose sha256 is the identity), the task's version, config hash and data files with their sha256
into `source_data.additional_details`, stderr and the run's seed, versions and commit into
`score_details.details`. Only record.json is read, never a sample log, so no document or model
output can reach an export.

Every file is checked against `schemas/every_eval_ever-0.2.0-subset.schema.json` before any is
written. That file is harness's own statement of the v0.2.0 fields it writes, not the upstream
schema: the v0.2.0 file itself and its licence were not available to check, so the fields were
checked by hand (sources in the file's `$comment`). Like the files every_eval_ever's converters
marked 0.2.0, ours have no `eval_library` (v0.2.1 made it required), so lm-eval's version goes
with the other run facts.

Both timestamps are the run's `created_at`, so exporting a run twice writes the same bytes.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness._util.files import atomic_write_text, canonical_json
from harness._util.paths import check_output_folder, inside
from harness.errors import HarnessError
from harness.records._runs import Run, load_run
from harness.records._schema import UNIT_INTERVAL_METRICS, InterventionRecord, TaskResult, VariantRecord

if TYPE_CHECKING:
    import jsonschema

FORMATS = ("every_eval_ever",)
SCHEMA_VERSION = "0.2.0"
SCHEMA = Path(__file__).parent / "schemas" / "every_eval_ever-0.2.0-subset.schema.json"


def export_run(path: str | Path, out: str | Path, fmt: str = "every_eval_ever") -> list[Path]:
    """Write the run's export under `out` and return the files written."""
    if fmt not in FORMATS:
        raise HarnessError(f"unknown export format {fmt!r}: choose from {', '.join(FORMATS)}")
    check_output_folder(out, "--out")
    run = load_run(path)
    documents = every_eval_ever_documents(run)
    if not documents:
        raise HarnessError(f"run {run.record.run_id} has no finite metric to export: nothing written")
    for relative, document in documents.items():
        check(document, relative)
    written = []
    targets = {relative: inside(Path(out), relative) for relative in documents}  # all checked before any is written
    for relative, document in documents.items():
        target = targets[relative]
        atomic_write_text(target, json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
        written.append(target)
    return written


@cache
def _validator() -> jsonschema.Draft7Validator:
    import jsonschema

    return jsonschema.Draft7Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))


def check(document: dict[str, Any], name: str) -> None:
    """Raise one line naming the first field of `document` that v0.2.0 does not accept."""
    error = next(iter(_validator().iter_errors(document)), None)
    if error is not None:
        where = "/".join(str(part) for part in error.absolute_path) or "(top level)"
        raise HarnessError(f"{name}: not valid every_eval_ever {SCHEMA_VERSION} at {where}: {error.message}")


def every_eval_ever_documents(run: Run) -> dict[str, dict[str, Any]]:
    """Relative file name -> document, for each variant and task with at least one finite metric."""
    stamp = _epoch(run.record.created_at)
    variants = {v.identity: v for v in run.record.variants}
    documents = {}
    for result in run.record.results:
        entries = [
            _evaluation_result(run, result, metric, value.value, value.stderr)
            for metric, value in result.metrics.items()
            if value.value is not None and math.isfinite(value.value)
        ]
        if not entries:
            continue
        variant = variants[result.variant]
        documents[f"{variant.identity[:12]}/{result.task}.json"] = {
            "schema_version": SCHEMA_VERSION,
            "evaluation_id": f"{result.task}/{variant.model}/{stamp}",
            "evaluation_timestamp": stamp,
            "retrieved_timestamp": stamp,
            "source_metadata": {
                "source_name": "harness",
                "source_type": "evaluation_run",
                "source_organization_name": "unknown",
                # the variant is made by whoever ran harness; a bare base is someone else's model
                "evaluator_relationship": "first_party" if variant.intervention.wrappers else "third_party",
            },
            "model_info": _model_info(run, variant),
            "evaluation_results": entries,
        }
    return documents


def _epoch(created_at: str) -> str:
    moment = datetime.fromisoformat(created_at)
    if moment.tzinfo is None:  # records are written in UTC
        moment = moment.replace(tzinfo=UTC)
    return str(moment.timestamp())


def _model_info(run: Run, variant: VariantRecord) -> dict[str, Any]:
    base = variant.intervention.base
    details = {
        "harness_variant_identity": variant.identity,
        "harness_model": variant.model,
        "base_origin": variant.base_origin,
        "base_identity": InterventionRecord(base=base).identity(),
        "base_weights_sha256": base.weights_sha256,
        "base_format": base.format,
        "base_dtype": base.dtype,
        "intervention_record": canonical_json(variant.intervention.model_dump(mode="json")),
    }
    if variant.applied:
        details["applied"] = canonical_json([a.model_dump(mode="json") for a in variant.applied])
    if variant.cost:
        details.update({f"cost_{name}": str(value) for name, value in variant.cost.model_dump().items()})
    info: dict[str, Any] = {"name": variant.model, "id": variant.model}
    if variant.base_origin.startswith("hub:") and "/" in variant.base_origin:
        info["developer"] = variant.base_origin.removeprefix("hub:").split("/")[0]
    if transformers := run.record.environment.packages.get("transformers"):
        info["inference_engine"] = {"name": "transformers", "version": transformers}
    info["additional_details"] = details
    return info


def _evaluation_result(run: Run, result: TaskResult, key: str, value: float, stderr: float | None) -> dict[str, Any]:
    metric, _, filter_name = key.partition(",")
    metric_config: dict[str, Any] = {
        "evaluation_description": f"{metric} (filter: {filter_name})" if filter_name else metric,
        "lower_is_better": not _higher_is_better(run, result, key),
    }
    if metric in UNIT_INTERVAL_METRICS:
        metric_config.update(score_type="continuous", min_score=0.0, max_score=1.0)
    return {
        "evaluation_name": f"{result.task}/{filter_name}" if filter_name else result.task,
        "source_data": {"dataset_name": result.task, "source_type": "other", "additional_details": _task_details(run, result)},
        "metric_config": metric_config,
        "score_details": {"score": value, "details": _score_details(run, key, stderr)},
    }


def _higher_is_better(run: Run, result: TaskResult, key: str) -> bool:
    """The result's own flag, else (a group lm-eval left without one) the flag all its tasks share."""

    def flag(r: TaskResult) -> bool | None:
        return r.higher_is_better.get(key, r.higher_is_better.get(key.split(",")[0]))

    found = flag(result)
    if found is None:
        leaves = {flag(r) for leaf in run.leaves(result.task) if (r := run.results.get((result.variant, leaf)))}
        found = leaves.pop() if len(leaves) == 1 else None
    if found is None:
        raise HarnessError(f"run {run.record.run_id}: task {result.task} does not say whether a higher {key} is better")
    return found


def _task_details(run: Run, result: TaskResult) -> dict[str, str]:
    details: dict[str, str] = {"kind": result.kind}
    optional = {
        "version": result.version,
        "num_fewshot": result.num_fewshot,
        "n_samples": result.n_samples,
        "config_hash": result.config_hash,
    }
    details.update({name: str(value) for name, value in optional.items() if value is not None})
    if result.kind == "group":
        details["subtasks"] = ",".join(run.subtasks.get(result.task, ()))
    for i, file in enumerate(result.data_files):
        details.update(
            {
                f"data_file.{i}.split": file.split,
                f"data_file.{i}.path": file.path,
                f"data_file.{i}.origin": file.origin,
                f"data_file.{i}.sha256": file.sha256,
            }
        )
    if result.scorer:
        details.update(
            {"scorer": result.scorer.name, "scorer_version": result.scorer.version, "scorer_weights_sha256": result.scorer.weights_sha256}
        )
    return details


def _score_details(run: Run, key: str, stderr: float | None) -> dict[str, str]:
    record = run.record
    details = {
        "metric": key,
        "harness_run_id": record.run_id,
        "harness_version": record.environment.harness_version,
        "seed": str(record.spec.seed),
        "batch_size": str(record.spec.batch_size),
        "device": record.spec.device,
    }
    if stderr is not None and math.isfinite(stderr):
        details["stderr"] = repr(stderr)
    if record.environment.git_commit:
        details["harness_git_commit"] = record.environment.git_commit
    if lm_eval := record.environment.packages.get("lm_eval"):
        details["lm_eval_version"] = lm_eval
    return details

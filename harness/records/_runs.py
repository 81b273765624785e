"""A run as the readers of records see it: its record, its task tree and its sample logs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from harness._util.paths import inside
from harness.errors import HarnessError
from harness.records._schema import RunRecord, TaskResult, read_record

RowKey = tuple[str, int, str]
"""(task, doc_id, filter): one document's entry in a sample log."""


@dataclass(frozen=True)
class Run:
    """A run record and the folder its sample logs are relative to."""

    record: RunRecord
    folder: Path

    @cached_property
    def results(self) -> dict[tuple[str, str], TaskResult]:
        return {(r.variant, r.task): r for r in self.record.results}

    @cached_property
    def subtasks(self) -> dict[str, tuple[str, ...]]:
        """Group -> its direct subtasks, the same for every variant of a run."""
        found: dict[str, tuple[str, ...]] = {}
        for raw in self.record.lm_eval.values():
            for group, members in (raw.get("group_subtasks") or {}).items():
                found.setdefault(group, tuple(members))
        return found

    def leaves(self, task: str) -> tuple[str, ...]:
        members = self.subtasks.get(task)
        return (task,) if not members else tuple(leaf for m in members for leaf in self.leaves(m))

    @cached_property
    def headline_tasks(self) -> tuple[str, ...]:
        """What a reader looks at first: each top-level result with metrics (a group, or a task in
        no group); a group without metrics of its own stands for its subtasks."""
        tasks = list(dict.fromkeys(r.task for r in self.record.results))
        inner = {m for members in self.subtasks.values() for m in members}
        with_metrics = {r.task for r in self.record.results if r.metrics}

        def expand(name: str) -> list[str]:
            if name in with_metrics:
                return [name]
            return [t for m in self.subtasks.get(name, ()) for t in expand(m)]

        return tuple(dict.fromkeys(t for name in tasks if name not in inner for t in expand(name)))


def invalid_because(exc: ValueError) -> str:
    """One line saying why a file did not validate: the first field pydantic refused and why
    (its message's first line is only "1 validation error for RunRecord"), else the error's first line."""
    if isinstance(exc, ValidationError):
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "(top level)"
        return f"{where}: {error['msg']}"
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def load_run(path: str | Path) -> Run:
    """A run folder (or its record.json), read and validated."""
    path = Path(path)
    folder = path.parent if path.name == "record.json" else path
    if not (folder / "record.json").is_file():
        raise HarnessError(f"{path} is not a run folder: no record.json in {folder}")
    try:
        record = read_record(folder)
    except ValueError as exc:
        raise HarnessError(f"{folder / 'record.json'} is not a valid run record: {invalid_because(exc)}") from None
    except RecursionError:
        raise HarnessError(f"{folder / 'record.json'} is not a valid run record: nested too deeply") from None
    except OSError as exc:
        raise HarnessError(f"{folder / 'record.json'} cannot be read: {exc.strerror}") from None
    return Run(record, folder)


@dataclass(frozen=True)
class Row:
    doc_hash: str | None
    values: dict[str, Any]
    """Record metric name (`exact_match,flexible-extract` for a filter) -> the document's value."""
    response: Any
    """lm-eval's filtered response: per-choice (log-likelihood, is-greedy) pairs, a rolling
    log-likelihood, or the generated output."""


def read_rows(run: Run, result: TaskResult) -> dict[RowKey, Row]:
    """A task's sample log, keyed by (task, doc_id, filter)."""
    if result.samples_file is None:
        raise HarnessError(f"run {run.record.run_id}: task {result.task} has no sample log")
    path = inside(run.folder, result.samples_file)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        raise HarnessError(f"run {run.record.run_id}: sample log {result.samples_file} is missing") from None
    except UnicodeDecodeError as exc:
        raise HarnessError(f"run {run.record.run_id}: sample log {result.samples_file} is not UTF-8 text (byte {exc.start})") from None
    rows = {}
    for number, line in enumerate(lines, 1):
        try:
            sample = json.loads(line)
            filter_name = sample.get("filter", "none")
            if not isinstance(filter_name, str):
                raise TypeError(filter_name)
            values = {
                (metric if filter_name == "none" else f"{metric},{filter_name}"): sample.get(metric) for metric in sample.get("metrics", [])
            }
            key = (result.task, int(sample["doc_id"]), filter_name)
        except (ValueError, KeyError, TypeError, AttributeError, OverflowError, RecursionError):
            raise HarnessError(f"{path}: line {number} is not a sample log entry") from None
        if key in rows:
            raise HarnessError(f"{path}: line {number} repeats document {key[1]} (filter {key[2]})")
        rows[key] = Row(sample.get("doc_hash"), values, sample.get("filtered_resps"))
    _check_complete(run, result, rows)
    return rows


def _check_complete(run: Run, result: TaskResult, rows: dict[RowKey, Row]) -> None:
    """A sample log holds each of the result's documents under each of its filters: a log cut
    short would otherwise be paired, reported and released on fewer documents without a word."""
    documents = {doc for _, doc, _ in rows}
    filters = {f for _, _, f in rows}
    if result.n_samples is not None and len(documents) != result.n_samples:
        raise HarnessError(
            f"run {run.record.run_id}: sample log {result.samples_file} holds {len(documents)} documents,"
            f" the record counts {result.n_samples} (cut short or changed)"
        )
    if len(rows) != len(documents) * len(filters):
        raise HarnessError(f"run {run.record.run_id}: sample log {result.samples_file} lacks some documents under some filters")

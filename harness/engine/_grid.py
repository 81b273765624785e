"""The run's grid, for an executor that spreads it: each variant x each task x document shard.

`run()` checks the spec, resolves every model and task and hashes them, then hands a Workload to
the executor (if one was asked for) before it evaluates anything. The executor fills the variants'
request caches shard by shard; `run()` then evaluates as it always does, every request a cache hit,
so the record is the local one by construction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from harness.records._schema import ExecutionRecord
from harness.spec._spec import RunSpec
from harness.variant._variant import Variant


@dataclass(frozen=True)
class Shard:
    """Documents [first, end) of one leaf task, for one variant (an index into Workload.variants)."""

    variant: int
    task: str
    first: int
    end: int

    def mark(self, task_hash: str, batch_size: int | str) -> str:
        """The shard's name in the variant's request cache: its results are stored under it once
        complete. The task hash fixes the task's config, data, few-shot count and seed; the batch
        size fixes how its requests are cut into the chunks that a shard computes."""
        return f"{task_hash}:{batch_size}:{self.first}-{self.end}"


@dataclass(frozen=True)
class Workload:
    spec: RunSpec
    variants: tuple[Variant, ...]
    documents: dict[str, int]
    """Leaf task -> documents evaluated (after --limit)."""
    requested_as: dict[str, str]
    """Leaf task -> the name in --tasks that brought it in (a leaf is loaded through it, so a
    group's overrides of its tasks' settings apply on the worker as they do here)."""
    task_hashes: dict[str, str]
    device: str

    def shards(self, shard_size: int) -> list[Shard]:
        """Variant by variant, task by task, in document order."""
        return [
            Shard(index, task, first, min(first + shard_size, size))
            for index in range(len(self.variants))
            for task, size in self.documents.items()
            for first in range(0, size, shard_size)
        ]


Executor = Callable[[Workload], ExecutionRecord]

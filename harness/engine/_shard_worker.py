"""What one scale-out worker does: build variants (a bounded number at a time) and answer shards.

A shard is answered through lm-eval itself: the worker loads the task as the driver does and runs
`simple_evaluate` on it with a ShardLM, which computes the chunks of requests that start at the
shard's documents and then stops the evaluation (nothing is scored). The requests are therefore
exactly those the driver's own evaluation will make, few-shot contexts included (lm-eval draws them
in document order from the first document), computed in the same batches, and their answers go
under the same variant-keyed cache keys.

Ray-free: `harness.engine._ray_executor` wraps a ShardWorker in a Ray actor.
"""

from __future__ import annotations

import gc
import os
import resource
import socket
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from lm_eval.api.instance import Instance

from harness._util.paths import cache_dir
from harness.engine._evaluate import evaluate, load_tasks, process_kept
from harness.errors import HarnessError
from harness.lm._answer_context import open_request_cache
from harness.lm._harness_lm import HarnessLM, largest_chunk
from harness.lm._request_cache import RequestCache
from harness.models import resolve_model
from harness.spec._spec import RunSpec, VariantSpec
from harness.tasks.index import task_manager
from harness.variant._variant import Variant


class ShardDone(Exception):
    """Raised by ShardLM once its shard is answered, to end lm-eval's evaluation of the task; it
    carries the shard's answers out of the evaluation."""

    def __init__(self, answered: list[tuple[str, Any]]) -> None:
        super().__init__(f"{len(answered)} requests answered")
        self.answered = answered
        """(cache key, answer) for every request of the shard."""


class ShardLM(HarnessLM):
    """A HarnessLM that answers only its shard, then stops the evaluation. HarnessLM cuts a task's
    requests into chunks, each computed in one go (its batches decide the last bits of a
    log-likelihood); a shard's chunks are those whose first request is one of its documents', so
    every chunk is computed by exactly one shard, in the very batches of a local run."""

    def __init__(self, *, cache: RequestCache, **kwargs: Any) -> None:
        super().__init__(cache=cache, **kwargs)
        self.documents: range = range(0)
        self._requests = cache
        self._mine: list[int] = []

    def _wanted(self, requests: list[Instance], part: list[int]) -> bool:
        if requests[part[0]].doc_id not in self.documents:
            return False
        self._mine.extend(part)
        return True

    def _answer_indexed(
        self,
        requests: list[Instance],
        kind: str,
        compute: Callable[[list[int]], list[Any]],
        key_args: Callable[[int], list[Any]],
        units: list[list[int]],
    ) -> list[Any]:
        self._mine = []
        answers = super()._answer_indexed(requests, kind, compute, key_args, units)
        hashes = self._task_hashes
        raise ShardDone([(self._requests.key(hashes[requests[i].task_name], kind, key_args(i)), answers[i]) for i in self._mine])

    def close(self) -> None:
        self._requests.close()


@dataclass(frozen=True)
class ShardJob:
    """One shard, as the driver sends it: everything a worker needs besides its own files."""

    spec: RunSpec
    model: str
    """The variant's model string."""
    identity: str
    """The variant's identity on the driver; a worker whose files give another one refuses."""
    task: str
    documents: int
    """Documents the task evaluates (after --limit)."""
    requested_as: str
    task_hashes: Mapping[str, str]
    first: int
    end: int
    device: str
    threads: int
    """The driver's torch thread count. Some float32 matrix products (the LM head over a few
    scored rows) change their last bits with the thread count, so a worker computes with the
    driver's, whatever CPUs Ray gave it (OMP_NUM_THREADS is 1 in a one-CPU actor)."""


@dataclass(frozen=True)
class ShardOutcome:
    answered: list[tuple[str, Any]]
    """(cache key, answer) for every request of the shard."""
    seconds: float
    load_seconds: float | None
    """Set when this shard built the variant on this worker."""
    cost: dict[str, Any] | None
    applied: list[dict[str, Any]] | None
    """The wrappers' facts (LoadedVariant.applied_facts), when the worker holds the variant built."""
    computed: int
    cached: int
    worker: str
    held: tuple[str, ...]
    """Identities of the variants the worker holds after the shard, least recently used first."""
    peak_rss_bytes: int


def model_bytes(model: Any) -> int:
    """Bytes of a built model's tensors (parameters and buffers; tied weights counted once)."""
    seen: dict[int, int] = {}
    for tensor in [*model.parameters(), *model.buffers()]:
        seen[tensor.data_ptr()] = tensor.numel() * tensor.element_size()
    return sum(seen.values())


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


class ShardWorker:
    """Holds up to `capacity` built variants (least recently used goes first). With no capacity
    given, it is derived after the first build: `memory_budget` bytes over the model's size."""

    def __init__(self, capacity: int | None, memory_budget: int) -> None:
        self.capacity = capacity
        self.memory_budget = memory_budget
        self.models: OrderedDict[str, ShardLM] = OrderedDict()
        self.worker = f"{socket.gethostname()}:{os.getpid()}"

    def evaluate(self, job: ShardJob) -> ShardOutcome:
        """Compute the shard's chunks (building its variant if this worker does not hold it)."""
        with process_kept(job.spec):
            return self._evaluate(job)

    def _evaluate(self, job: ShardJob) -> ShardOutcome:
        import torch

        torch.set_num_threads(job.threads)
        began = time.perf_counter()
        lm = self._lm(job)
        built_before = lm.loaded is not None
        manager = task_manager(job.spec.data_dir, job.spec.include_path, job.spec.tasks)
        task = load_tasks(manager, [job.requested_as], job.spec).leaves[job.task]
        computed = sum(lm.task_computed.values())
        cached = sum(lm.task_cached.values())
        lm.documents = range(job.first, job.end)
        # The shard's last chunk may reach past its documents, never by more than a chunk's requests.
        documents = list(range(min(job.documents, job.end + largest_chunk(job.spec.batch_size))))
        try:
            evaluate(lm, [task], job.spec, manager, samples={job.task: documents})
        except ShardDone as done:
            answered = done.answered
        else:
            raise HarnessError(f"lm-eval asked {job.model} nothing for {job.task} documents {job.first}-{job.end}")
        built_now = None if built_before else lm.loaded
        load_seconds = built_now.seconds if built_now is not None else None
        if built_now is not None and self.capacity is None:
            self.capacity = max(1, self.memory_budget // max(1, model_bytes(built_now.model)))
        return ShardOutcome(
            answered=answered,
            seconds=round(time.perf_counter() - began - (load_seconds or 0.0), 4),
            load_seconds=load_seconds,
            cost=lm.loaded.cost.model_dump() if lm.loaded is not None and lm.loaded.cost is not None else None,
            applied=lm.loaded.applied_facts() if lm.loaded is not None else None,
            computed=sum(lm.task_computed.values()) - computed,
            cached=sum(lm.task_cached.values()) - cached,
            worker=self.worker,
            held=tuple(self.models),
            peak_rss_bytes=peak_rss_bytes(),
        )

    def _lm(self, job: ShardJob) -> ShardLM:
        if job.identity in self.models:
            self.models.move_to_end(job.identity)
            return self.models[job.identity]
        spec = VariantSpec.parse(job.model)
        variant = Variant(spec, resolve_model(spec.base))
        if variant.identity != job.identity:
            raise HarnessError(
                f"{job.model} is {variant.identity[:12]} on worker {self.worker} but {job.identity[:12]} on the"
                " driver: their model files or artifacts differ"
            )
        if self.capacity is not None:
            self._evict(keep=self.capacity - 1)  # before building: at most `capacity` built at once
        lm = ShardLM(
            variant=variant,
            cache=open_request_cache(cache_dir() / "requests", variant, job.device, job.spec.batch_size),
            task_hashes=job.task_hashes,
            batch_size=job.spec.batch_size,
            device=job.device,
            seed=job.spec.seed,
        )
        self.models[job.identity] = lm
        return lm

    def _evict(self, keep: int) -> None:
        """Drop the least recently used variants down to `keep`; they are rebuilt if asked for again."""
        while len(self.models) > keep:
            _, lm = self.models.popitem(last=False)
            lm.close()
            del lm
            gc.collect()

"""`--executor ray`: the run's grid as Ray actor tasks; imported only when asked for (Ray is optional).

Ray places the workers (one actor per `cpus_per_worker` CPUs, or per GPU), restarts a worker that
dies and retries the shard it was running. The driver only decides which shard goes to which
free worker: one whose variant that worker already holds when there is one, so a variant is built
once per worker. Each finished shard's answers are stored in the driver's request cache together
with the shard's mark (in one transaction), so a rerun after the driver was killed skips it.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import ray
import torch
from ray.actor import ActorClass

from harness._util.paths import cache_dir
from harness.engine._grid import Shard, Workload
from harness.engine._shard_worker import ShardJob, ShardOutcome, ShardWorker, peak_rss_bytes
from harness.errors import HarnessError
from harness.lm._answer_context import open_request_cache
from harness.lm._request_cache import RequestCache
from harness.records._schema import ExecutionRecord, ShardRecord

# A worker that dies is restarted and its shard retried this many times before the run fails.
_RETRIES = 3
# Environment a worker needs to find the same files as the driver (the data directory travels in the spec).
_FORWARDED_ENV = ("HARNESS_CACHE_DIR", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "PYTHONPATH")
# Share of a worker's memory that built models may take when their number is derived.
_MODEL_SHARE = 0.5


@dataclass(frozen=True)
class RayOptions:
    address: str | None = None
    """An existing cluster (`ray://host:10001`, `host:6379`, `auto`); None: start a local one."""
    max_models_per_worker: int | None = None
    shard_size: int = 100
    cpus_per_worker: int = 1


class _ShardActor:
    def __init__(self, capacity: int | None, memory_budget: int) -> None:
        self.worker = ShardWorker(capacity, memory_budget)

    def evaluate(self, job: ShardJob) -> ShardOutcome:
        return self.worker.evaluate(job)


# Ray's stubs type a decorated class as the class itself, without the actor class's `options`; and
# its handles' remote methods not at all (the actor handles below are Any).
_Actor = cast("ActorClass[_ShardActor]", ray.remote(max_restarts=_RETRIES, max_task_retries=_RETRIES)(_ShardActor))


def _progress(line: str) -> None:
    logging.getLogger(__name__).info(f"[ray] {line}")  # harness's logger: the terminal, also while a run captures stderr


class RayExecutor:
    """Callable as a harness.engine._grid.Executor. `on_shard(outcome)` is called after each shard's
    results are stored (the tests use it to kill a worker or the driver mid-run)."""

    def __init__(self, options: RayOptions, on_shard: Callable[[ShardOutcome], object] | None = None) -> None:
        self.options = options
        self.on_shard = on_shard

    def __call__(self, workload: Workload) -> ExecutionRecord:
        started = time.perf_counter()
        ours = not ray.is_initialized()
        if ours:
            ray.init(address=self.options.address, include_dashboard=False, log_to_driver=False, configure_logging=False)
        try:
            return self._execute(workload, started)
        finally:
            if ours:
                ray.shutdown()

    def _execute(self, workload: Workload, started: float) -> ExecutionRecord:
        options = self.options
        shards = workload.shards(options.shard_size)
        caches = {
            v.identity: open_request_cache(cache_dir() / "requests", v, workload.device, workload.spec.batch_size)
            for v in workload.variants
        }
        try:
            records: dict[Shard, ShardRecord] = {}
            pending: dict[int, deque[Shard]] = {i: deque() for i in range(len(workload.variants))}
            for shard in shards:
                identity = workload.variants[shard.variant].identity
                if caches[identity].has_shard(shard.mark(workload.task_hashes[shard.task], workload.spec.batch_size)):
                    records[shard] = ShardRecord(variant=identity, task=shard.task, first=shard.first, end=shard.end, status="resumed")
                else:
                    pending[shard.variant].append(shard)
            todo = sum(len(q) for q in pending.values())
            _progress(f"{len(shards)} shards ({len(shards) - todo} done by an earlier run), {len(workload.variants)} variants")
            actors = self._start_actors(workload, todo) if todo else []
            try:
                models_built = self._dispatch(workload, actors, pending, caches, records, started)
            finally:
                for actor in actors:
                    ray.kill(actor)
        finally:
            for cache in caches.values():
                cache.close()
        return ExecutionRecord(
            executor="ray",
            address=options.address,
            workers=len(actors),
            max_models_per_worker=options.max_models_per_worker,
            shard_size=options.shard_size,
            models_built=models_built,
            seconds=round(time.perf_counter() - started, 4),
            driver_peak_rss_bytes=peak_rss_bytes(),
            shards=tuple(records[s] for s in shards),
        )

    def _start_actors(self, workload: Workload, todo: int) -> list[Any]:
        resources = ray.cluster_resources()
        on_gpu = workload.device.startswith("cuda")
        slots = int(resources.get("GPU", 0)) if on_gpu else int(resources.get("CPU", 1)) // self.options.cpus_per_worker
        count = max(1, min(slots, todo))
        budget = int(resources.get("memory", 0) * _MODEL_SHARE / max(1, slots))  # a worker's share of the cluster
        env = {name: os.environ[name] for name in _FORWARDED_ENV if name in os.environ}
        return [
            _Actor.options(num_cpus=self.options.cpus_per_worker, num_gpus=1 if on_gpu else 0, runtime_env={"env_vars": env}).remote(
                self.options.max_models_per_worker, budget
            )
            for _ in range(count)
        ]

    def _dispatch(
        self,
        workload: Workload,
        actors: list[Any],
        pending: dict[int, deque[Shard]],
        caches: dict[str, RequestCache],
        records: dict[Shard, ShardRecord],
        started: float,
    ) -> int:
        """Keep every worker busy with one shard; prefer a variant it already holds."""
        totals = {i: sum(1 for s in records if s.variant == i) + len(q) for i, q in pending.items()}
        done = {i: sum(1 for s in records if s.variant == i) for i in pending}
        holds: dict[int, list[int]] = {n: [] for n in range(len(actors))}
        in_flight: dict[ray.ObjectRef, tuple[int, Shard]] = {}
        index_of = {v.identity: i for i, v in reversed(list(enumerate(workload.variants)))}
        models_built = 0
        threads = torch.get_num_threads()

        def submit(n: int) -> None:
            held = [v for v in holds[n] if pending[v]]
            if held:
                variant = held[-1]
            else:
                open_variants = [v for v in pending if pending[v]]
                if not open_variants:
                    return
                holders = {v: sum(v in h for h in holds.values()) for v in open_variants}
                variant = min(open_variants, key=lambda v: (holders[v], -len(pending[v]), v))
                capacity = self.options.max_models_per_worker
                holds[n] = [*holds[n], variant][-capacity:] if capacity else [*holds[n], variant]
            shard = pending[variant].popleft()
            v = workload.variants[variant]
            job = ShardJob(
                spec=workload.spec,
                model=v.spec.model,
                identity=v.identity,
                task=shard.task,
                documents=workload.documents[shard.task],
                requested_as=workload.requested_as[shard.task],
                task_hashes=workload.task_hashes,
                first=shard.first,
                end=shard.end,
                device=workload.device,
                threads=threads,
            )
            in_flight[actors[n].evaluate.remote(job)] = (n, shard)

        for n in range(len(actors)):
            submit(n)
        while in_flight:
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            n, shard = in_flight.pop(ready[0])
            v = workload.variants[shard.variant]
            try:
                outcome: ShardOutcome = ray.get(ready[0])
            except ray.exceptions.RayError as exc:
                cause = getattr(exc, "cause", None)
                if isinstance(cause, HarnessError):
                    raise cause from None
                first_line = (str(cause or exc).strip().splitlines() or [type(exc).__name__])[-1]
                raise HarnessError(
                    f"shard {shard.task} {shard.first}-{shard.end} of {v.spec.model} failed on the cluster: {first_line}"
                ) from None
            cache = caches[v.identity]
            cache.put_shard(shard.mark(workload.task_hashes[shard.task], workload.spec.batch_size), outcome.answered)
            if outcome.cost is not None:
                cache.put_fact("cost", outcome.cost)
            if outcome.applied is not None:
                cache.put_fact("applied", outcome.applied)
            models_built += outcome.load_seconds is not None
            holds[n] = [index_of[identity] for identity in outcome.held if identity in index_of]
            records[shard] = ShardRecord(
                variant=v.identity,
                task=shard.task,
                first=shard.first,
                end=shard.end,
                status="computed",
                seconds=outcome.seconds,
                load_seconds=outcome.load_seconds,
                worker=outcome.worker,
                requests_computed=outcome.computed,
                requests_cached=outcome.cached,
                worker_peak_rss_bytes=outcome.peak_rss_bytes,
                finished_seconds=round(time.perf_counter() - started, 4),
            )
            done[shard.variant] += 1
            submit(n)
            _progress(
                f"{v.spec.model}: {done[shard.variant]}/{totals[shard.variant]} shards"
                f" ({sum(done.values())}/{sum(totals.values())} in all; {shard.task} {shard.first}-{shard.end}"
                f" in {outcome.seconds:.1f}s on {outcome.worker})"
            )
            if self.on_shard is not None:
                self.on_shard(outcome)
        return models_built

"""lm-eval as the engine drives it, written once for the local run and the scale-out worker: the
tasks loaded with the run's settings, the one evaluation call, and the libraries kept quiet.

What an evaluation must change in the process it changes only while it runs (`process_kept`):
logger levels, progress bars and warning filters, the environment variables it reads, the random
generators lm-eval seeds; a caller's process is as it was once the call returns.
"""

from __future__ import annotations

import functools
import logging
import random
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from harness._util.environ import scoped_environ
from harness.lm._harness_lm import HarnessLM
from harness.spec._spec import RunSpec
from harness.tasks import data, toxicity

_LIBRARY_LOGGERS = ("lm_eval", "datasets", "transformers", "accelerate", "huggingface_hub")


@contextmanager
def process_kept(spec: RunSpec) -> Iterator[None]:
    """Around an evaluation of `spec`: libraries quiet, its environment variables set, and all of it
    (random generators included) restored on exit."""
    with _quiet_libraries(), scoped_environ(_evaluation_environ(spec)), _random_state_kept():
        yield


@contextmanager
def _quiet_libraries() -> Iterator[None]:
    """Keep the terminal for harness's progress and table while inside: libraries only report
    errors. Their logger levels, progress bars and the warning filters are restored on exit."""
    import datasets
    import transformers

    loggers = {name: logging.getLogger(name) for name in _LIBRARY_LOGGERS}
    levels = {name: logger.level for name, logger in loggers.items()}
    transformers_bars = transformers.utils.logging.is_progress_bar_enabled()
    datasets_bars = not datasets.are_progress_bars_disabled()
    with warnings.catch_warnings():
        try:
            for logger in loggers.values():
                logger.setLevel(logging.ERROR)
            transformers.utils.logging.disable_progress_bar()
            datasets.disable_progress_bars()
            warnings.filterwarnings("ignore", module="lm_eval")
            yield
        finally:
            for name, logger in loggers.items():
                logger.setLevel(levels[name])
            if transformers_bars:
                transformers.utils.logging.enable_progress_bar()
            if datasets_bars and datasets.are_progress_bars_disabled():
                datasets.enable_progress_bars()


def _evaluation_environ(spec: RunSpec) -> dict[str, str | None]:
    """The environment variables an evaluation sets while it runs (harness._util.environ restores
    them): the data directory (wrappers' calibration text and experts' training data are found
    through it) and the toxicity scorer (toxicity.select_scorer names it there for lm-eval's
    scoring of generations)."""
    return {data.DATA_DIR_ENV: str(spec.data_dir) if spec.data_dir is not None else None, toxicity.SCORER_ENV: None}


@contextmanager
def _random_state_kept() -> Iterator[None]:
    """Give back the random generators (Python's, NumPy's, torch's; CUDA's when the caller had
    initialised it): lm-eval seeds them, and the libraries draw from them."""
    import numpy as np
    import torch

    python_state, numpy_state = random.getstate(), np.random.get_state()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=devices):
        try:
            yield
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)


@dataclass
class LoadedTasks:
    """The tasks of one evaluation, as lm-eval loaded them."""

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


def load_tasks(manager: Any, names: Sequence[str], spec: RunSpec) -> LoadedTasks:
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
    return LoadedTasks(top_level, leaves, requested_as)


def _process_docs_once(task: Any) -> None:
    """Apply a task's `process_docs` once per split: lm-eval applies it on every access to the
    documents (several times per task even at --limit 1), and the result is the same every time.
    `functools.wraps` keeps the function's name, hence the task's config hash."""
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


def evaluate(
    lm: HarnessLM, tasks: list[Any], spec: RunSpec, manager: Any, *, limit: int | None = None, samples: dict[str, list[int]] | None = None
) -> dict[str, Any]:
    """lm-eval's evaluation of `tasks` by `lm` with the spec's few-shot count and seed, the first
    `limit` documents (or the `samples` indices) of each task, sample logs kept."""
    import lm_eval

    out: dict[str, Any] = lm_eval.simple_evaluate(
        model=lm,
        tasks=tasks,
        num_fewshot=spec.num_fewshot,
        limit=limit,
        samples=samples,
        task_manager=manager,
        log_samples=True,
        random_seed=spec.seed,
        numpy_random_seed=spec.seed,
        torch_random_seed=spec.seed,
        fewshot_random_seed=spec.seed,
    )
    return out

"""lm-eval as the engine drives it, written once for the local run and the scale-out worker: the
tasks loaded with the run's settings, the one evaluation call, and the libraries' output kept in the
run's log.

What an evaluation must change in the process it changes only while it runs (`process_kept`):
loggers, progress bars, the warning display and stderr, the environment variables it reads, the
random generators lm-eval seeds; a caller's process is as it was once the call returns.
"""

from __future__ import annotations

import functools
import logging
import os
import random
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness._util.environ import scoped_environ
from harness._util.log import captured
from harness.errors import HarnessError
from harness.lm._harness_lm import HarnessLM
from harness.spec._spec import RunSpec
from harness.tasks import data, toxicity

RUN_LOG = "run.log"
"""The run folder's log: what the libraries said while it ran (harness._util.log.captured)."""
_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunLog:
    """The log of the evaluation in progress, in a file of its own until the run folder exists."""

    path: Path

    def save(self, folder: Path) -> None:
        """A copy of the log so far as `folder`/run.log."""
        shutil.copyfile(self.path, folder / RUN_LOG)


@contextmanager
def process_kept(spec: RunSpec) -> Iterator[RunLog]:
    """Around an evaluation of `spec`: the libraries' output in its log, its environment variables
    set, and all of it (random generators included) restored on exit."""
    with _libraries_logged() as log, scoped_environ(_evaluation_environ(spec)), _random_state_kept():
        yield log


@contextmanager
def _libraries_logged() -> Iterator[RunLog]:
    """Keep the terminal for harness's progress bars and table while inside: the libraries' log
    records, warnings and stderr go to the run's log, their progress bars are off (harness draws one
    per variant and task). Their loggers, progress bars and the warning display are restored on
    exit. The log of a run that fails other than with a HarnessError (a refusal, said in one line)
    is kept, and named."""
    import datasets
    import transformers

    transformers_bars = transformers.utils.logging.is_progress_bar_enabled()
    datasets_bars = not datasets.are_progress_bars_disabled()
    handle, name = tempfile.mkstemp(prefix="harness-run-", suffix=".log")
    os.close(handle)
    log = RunLog(Path(name))
    keep = False
    try:
        transformers.utils.logging.disable_progress_bar()
        datasets.disable_progress_bars()
        with captured(log.path):
            yield log
    except Exception as exc:
        keep = not isinstance(exc, HarnessError)
        raise
    finally:
        if transformers_bars:
            transformers.utils.logging.enable_progress_bar()
        if datasets_bars and datasets.are_progress_bars_disabled():
            datasets.enable_progress_bars()
        if keep:
            _logger.error("what the libraries said during the failed run: %s", log.path)
        else:
            log.path.unlink(missing_ok=True)


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

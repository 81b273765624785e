"""lm-eval's TaskManager over an index harness assembles (harness.tasks.index), and a task factory
that finds each lm-eval task's dataset on this machine before the task loads it.

The factory refuses a task whose dataset is missing in one line, before lm-eval reaches for the
hub; points a task whose dataset is laid out in the data directory at that folder while it loads,
then puts the hub's name back into its config (its hash and record name the dataset, not a folder of
this machine); and turns a failed download into one line naming the dataset.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from lm_eval.api.task import Task
from lm_eval.tasks import TaskManager
from lm_eval.tasks._factory import TaskFactory
from lm_eval.tasks._index import Entry, Kind

from harness.errors import HarnessError
from harness.tasks import _datasets


class Manager(TaskManager):
    """A TaskManager whose index is given: each name with the source that defines it (`sources`),
    and the names an include path also defines but another source wins (`shadowed`, refused)."""

    def __init__(self, index: dict[str, Entry], sources: dict[str, str], shadowed: dict[str, str], data_dir: Path | None) -> None:
        metadata: dict[str, Any] | None = {"data_dir": str(data_dir)} if data_dir is not None else None
        super().__init__(include_defaults=False, metadata=metadata)  # an empty index, replaced below
        self._index = index
        kinds = defaultdict(list)
        for name, entry in index.items():
            kinds[entry.kind].append(name)
        self._all_tasks = sorted(index)
        self._all_subtasks = sorted(kinds[Kind.TASK] + kinds[Kind.PY_TASK])
        self._all_groups = sorted(kinds[Kind.GROUP])
        self._all_tags = sorted(kinds[Kind.TAG])
        self._factory = Factory(metadata, data_dir)
        self.sources = sources
        self.shadowed = shadowed

    def _load_spec(self, spec: str | dict[str, Any]) -> Any:
        if isinstance(spec, str) and spec in self.shadowed:
            raise HarnessError(
                f"task {spec!r} is defined by {self.sources[spec]} and by the include path {self.shadowed[spec]}, "
                f"where {self.sources[spec]} wins: give the include path's task another name"
            )
        return super()._load_spec(spec)


class Factory(TaskFactory):
    def __init__(self, metadata: dict[str, Any] | None, data_dir: Path | None) -> None:
        super().__init__(meta=metadata)
        self._data_dir = data_dir
        self._loading: tuple[str, _datasets.Location, dict[str, Any]] | None = None
        """The task being built: its name, where its data is, the config values it had before."""

    def _load_full_config(self, entry: Entry, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        cfg = super()._load_full_config(entry, overrides)
        name = cfg.get("task")
        if isinstance(name, str) and (where := _datasets.locate(cfg, self._data_dir)) is not None:
            if where.where == "missing":
                raise HarnessError(where.refusal(name, self._data_dir))
            self._loading = (name, where, {key: cfg.get(key) for key in where.local})
            cfg.update(where.local)
        return cfg

    def _build_task(self, entry: Entry, overrides: dict[str, Any] | None) -> Task:
        self._loading = None
        try:
            task = super()._build_task(entry, overrides)  # loads the dataset
        except Exception as exc:
            if self._loading is None or self._loading[1].where != "hub" or not _from_the_hub(exc):
                raise
            name, where, _ = self._loading
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise HarnessError(where.refusal(name, self._data_dir, f"could not be fetched from the hub ({reason})")) from None
        if self._loading is not None:
            for key, value in self._loading[2].items():
                setattr(task.config, key, value)
            if "dataset_path" in self._loading[2]:
                task.DATASET_PATH = self._loading[2]["dataset_path"]
        return task


def _from_the_hub(exc: Exception) -> bool:
    """Whether `exc` is a failure to fetch (a network, hub or datasets error), not a task's own bug."""
    return isinstance(exc, OSError) or type(exc).__module__.split(".")[0] in ("httpx", "httpx2", "requests", "huggingface_hub", "datasets")

"""Every task `--tasks` may name, as lm-eval sees them: harness's own (harness/tasks/library/), then
lm-eval's built-in tasks, then each `--include-path` folder in turn.

A name resolves to the first source that defines it. A name an include path defines but an earlier
source wins is refused when asked for, rather than silently evaluating the other task. lm-eval's own
index is cached (harness.tasks._lm_eval_index) and read only when a name asked for is not harness's,
so a run of harness's tasks starts as fast as before; harness's and the include paths' indexes are
read at every start (a few hundred files at most, and the user's may change between runs).

Each lm-eval task's dataset is located before it loads (harness.tasks._datasets): laid out in the data
directory as its hub repository is, in the Hugging Face datasets cache, or on the hub; missing while
offline, it is refused in one line.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness._util.paths import user_path
from harness.errors import HarnessError
from harness.tasks import _datasets, data

if TYPE_CHECKING:
    from lm_eval.tasks import TaskManager

LIBRARY = Path(__file__).resolve().parent / "library"
"""harness's own lm-eval task folders, one per family (in the wheel: package data)."""
HARNESS = "harness"
LM_EVAL = "lm-eval"
"""The sources of tasks besides the include paths (named by their folder)."""


def include_paths(value: Any) -> tuple[Path, ...]:
    """`--include-path` values (repeatable, a list in --config): each a readable folder, resolved,
    in the order given, without repeats."""
    items = value if isinstance(value, list | tuple) else [value] if value not in (None, "") else []
    paths: list[Path] = []
    for item in items:
        path = user_path(str(item))
        if not path.is_dir() or not os.access(path, os.R_OK | os.X_OK):
            raise HarnessError(f"--include-path {item} is not a readable folder")
        paths.append(path.resolve())
    return tuple(dict.fromkeys(paths))


def task_manager(data_dir: Path | None = None, include: Sequence[Path] = (), names: Sequence[str] | None = None) -> TaskManager:
    """A TaskManager over harness's tasks, lm-eval's and the folders in `include`, reading task data
    from `data_dir`. `names`: the only names the caller will load or check; when harness defines them
    all, lm-eval's index is left out (None: every name, as `harness tasks` lists them)."""
    from lm_eval.tasks._index import TaskIndex

    from harness.tasks._lm_eval_index import builtin_entries
    from harness.tasks._manager import Manager

    own = TaskIndex.build([LIBRARY])
    builtin = builtin_entries() if names is None or not set(names) <= set(own) else {}
    index: dict[str, Any] = {}
    sources: dict[str, str] = {}
    shadowed: dict[str, str] = {}
    for source, entries in (
        (HARNESS, own),
        (LM_EVAL, builtin),
        *((str(folder), TaskIndex.build([Path(folder)])) for folder in include),
    ):
        for name, entry in entries.items():
            if name not in index:
                index[name], sources[name] = entry, source
            elif source not in (HARNESS, LM_EVAL) and source != sources[name]:
                shadowed.setdefault(name, source)
    return Manager(index, sources, shadowed, data_dir)


def known_names(manager: TaskManager) -> list[str]:
    """Every task, group and tag name, sorted."""
    return sorted(manager.task_index)


def task_files(config: Any, data_dir: Path | None) -> list[data.ResolvedFile]:
    """The data files a loaded task (its TaskConfig) reads, found and hashed: the files a harness-style
    task declares (a custom_dataset over `data_files`), or an lm-eval task's dataset laid out in the data
    directory. None for data read from the datasets cache or the hub, or by a task's own loader."""
    if getattr(config, "custom_dataset", None) is not None:
        return data.resolve_task_files(config.dataset_kwargs, data_dir)
    where = _datasets.locate({key: getattr(config, key, None) for key in ("dataset_path", "dataset_name", "dataset_kwargs")}, data_dir)
    return _datasets.resolved(where, data_dir) if where is not None and data_dir is not None else []


@dataclass(frozen=True)
class TaskInfo:
    name: str
    kind: str
    origin: str
    """Where the task is defined: `harness`, `lm-eval` or the include path's folder."""
    family: str
    source: str
    """Where its data is: `data_dir`, `hf-cache`, `hub:REPO` (or the hub file), `missing`, or `-`
    (groups and tags; tasks whose own loader finds their data)."""
    present: str
    """`yes` when the data is on this machine, `hub` when it would be downloaded, `no` when it cannot
    be had (offline, or a harness file with no hub copy), `-` when not known ahead."""


def describe(manager: TaskManager, directory: Path | None) -> list[TaskInfo]:
    sources: dict[str, str] = getattr(manager, "sources", {})
    located: dict[str, tuple[str, str]] = {}  # many tasks share a dataset: each is looked for once
    rows: list[TaskInfo] = []
    for name, entry in sorted(manager.task_index.items()):
        kind = entry.kind.name.lower()
        family = entry.yaml_path.parent.name if entry.yaml_path else "-"
        cfg = entry.cfg or {}
        key = repr([cfg.get(k) for k in ("custom_dataset", "class", "dataset_path", "dataset_name", "dataset_kwargs")])
        if key not in located:
            located[key] = _data(cfg, directory)
        rows.append(TaskInfo(name, kind, sources.get(name, "-"), family, *located[key]))
    return rows


def _data(cfg: dict[str, Any], directory: Path | None) -> tuple[str, str]:
    """The data and present columns of `harness tasks` for an index entry's config."""
    if cfg.get("custom_dataset"):
        files = data.declared_files(cfg.get("dataset_kwargs"))
        if not files:
            return "-", "-"
        local = directory is not None and all((directory / f.local).is_file() for f in files)
        hubs = sorted({f.hub_repo for f in files if f.hub_repo})
        source = "data_dir" if local else (f"hub:{','.join(hubs)}" if hubs else "missing")
        return source, "yes" if local else ("hub" if hubs else "no")
    where = _datasets.locate(cfg, directory)
    return (where.shown, where.present) if where is not None else ("-", "-")

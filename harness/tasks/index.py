"""harness's tasks as lm-eval sees them: a TaskManager over `tasks/` alone.

lm-eval's built-in tasks are left out: indexing them slows every start, and a harness task that shares
a name with an lm-eval task must win (include_path tasks override built-ins in plain lm-eval too).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness.tasks import data

if TYPE_CHECKING:
    from lm_eval.tasks import TaskManager

LIBRARY = Path(__file__).resolve().parent / "library"
"""harness's own lm-eval task folders, one per family (in the wheel: package data)."""


def task_manager(data_dir: Path | None = None) -> TaskManager:
    from lm_eval.tasks import TaskManager

    metadata = {"data_dir": str(data_dir)} if data_dir is not None else None
    return TaskManager(include_path=str(LIBRARY), include_defaults=False, metadata=metadata)


def known_names(manager: TaskManager) -> list[str]:
    """Every task, group and tag name, sorted."""
    return sorted(manager.task_index)


@dataclass(frozen=True)
class TaskInfo:
    name: str
    kind: str
    family: str
    source: str
    """`data_dir`, `hub:REPO` or `-` (groups)."""
    present: str
    """`yes` when every file is in the data directory, `hub` when it would be downloaded."""


def describe(manager: TaskManager, directory: Path | None) -> list[TaskInfo]:
    rows: list[TaskInfo] = []
    for name, entry in sorted(manager.task_index.items()):
        kind = entry.kind.name.lower()
        family = entry.yaml_path.parent.name if entry.yaml_path else "-"
        files = data.declared_files((entry.cfg or {}).get("dataset_kwargs"))
        if not files:
            rows.append(TaskInfo(name, kind, family, "-", "-"))
            continue
        local = directory is not None and all((directory / f.local).is_file() for f in files)
        hubs = sorted({f.hub_repo for f in files if f.hub_repo})
        source = "data_dir" if local else (f"hub:{','.join(hubs)}" if hubs else "missing")
        rows.append(TaskInfo(name, kind, family, source, "yes" if local else ("hub" if hubs else "no")))
    return rows

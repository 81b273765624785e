"""Tasks: harness's lm-eval task folders (harness/tasks/library/) and their Python helpers (data
files, the toxicity protocol and its scorers), and the index that finds tasks by name. Task YAML
helpers import `harness.tasks.data` and `harness.tasks.toxicity`, so this package stays light.

Exports are lazy: the code a task's helpers import is part of the task's hash
(harness._util.code.callable_digest), and the index is not code any answer depends on.
"""

from typing import TYPE_CHECKING

from harness._util.lazy import lazy_exports

if TYPE_CHECKING:
    from harness.tasks.index import TaskInfo, describe, known_names, task_manager

__all__ = ["TaskInfo", "describe", "known_names", "task_manager"]

__getattr__, __dir__ = lazy_exports("harness.tasks", {name: "harness.tasks.index" for name in __all__})

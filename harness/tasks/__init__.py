"""Tasks: harness's lm-eval task folders and their Python helpers (data files, the toxicity
protocol and its scorers), and the index that finds tasks by name. Task YAML helpers import
`harness.tasks.data` and `harness.tasks.toxicity`, so this package stays light."""

from harness.tasks.index import TaskInfo, describe, known_names, task_manager

__all__ = ["TaskInfo", "describe", "known_names", "task_manager"]

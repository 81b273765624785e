"""The engine: a run spec evaluated over its grid (variants x tasks x document shards) by an
executor (local, or Ray), the record written; reproduction of a run; fitting artifacts.

Exports are lazy: they import lm-eval and torch.
"""

from typing import TYPE_CHECKING

from harness._util.lazy import lazy_exports

if TYPE_CHECKING:
    from harness.engine._executors import build_executor
    from harness.engine._fit import fit_artifact
    from harness.engine._neurons import list_neurons
    from harness.engine._reproduce import reproduce
    from harness.engine._run import run

__all__ = ["build_executor", "fit_artifact", "list_neurons", "reproduce", "run"]

__getattr__, __dir__ = lazy_exports(
    "harness.engine",
    {
        "build_executor": "harness.engine._executors",
        "fit_artifact": "harness.engine._fit",
        "list_neurons": "harness.engine._neurons",
        "reproduce": "harness.engine._reproduce",
        "run": "harness.engine._run",
    },
)

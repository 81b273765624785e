"""The Python API: evaluate models on tasks into a run, compare runs, read a run back.

    run = harness.evaluate(models=["smollm2-135m-instruct+exit:layer=15"], tasks=["arithmetic_2da"], limit=20)
    print(harness.compare(run).table())

`harness.evaluate` is `harness eval` as a function (the same options, the same checks, the same
record), `harness.compare` is `harness compare`, `harness.load_run` reads a run folder. A call
leaves the caller's process as it found it: logger levels and handlers, warning filters and the
environment (docs/api.md). Exports are lazy: they import lm-eval and torch.
"""

from typing import TYPE_CHECKING

from harness._util.lazy import lazy_exports

if TYPE_CHECKING:
    from harness.api._compare import compare
    from harness.api._evaluate import Options, evaluate
    from harness.records._runs import Run, load_run

__all__ = ["Options", "Run", "compare", "evaluate", "load_run"]

__getattr__, __dir__ = lazy_exports(
    "harness.api",
    {
        "Options": "harness.api._evaluate",
        "evaluate": "harness.api._evaluate",
        "compare": "harness.api._compare",
        "Run": "harness.records._runs",
        "load_run": "harness.records._runs",
    },
)

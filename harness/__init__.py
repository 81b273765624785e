"""harness: evaluate language models and their interventions side by side on lm-eval tasks.

The public API is imported lazily, so `import harness` (and the CLI's start) imports neither torch
nor lm-eval. The package is layered (docs/architecture.md): cli > engine, leaderboard > analysis >
lm > variant > spec > wrappers > models > tasks > records > _util > errors.
"""

from typing import TYPE_CHECKING

from harness._util.lazy import lazy_exports

if TYPE_CHECKING:
    from harness.engine import run
    from harness.errors import HarnessError
    from harness.records import RunRecord, read_record
    from harness.spec import RunSpec, VariantSpec, build_spec

__all__ = ["HarnessError", "RunRecord", "RunSpec", "VariantSpec", "build_spec", "read_record", "run"]

__getattr__, __dir__ = lazy_exports(
    "harness",
    {
        "HarnessError": "harness.errors",
        "RunRecord": "harness.records",
        "read_record": "harness.records",
        "RunSpec": "harness.spec",
        "VariantSpec": "harness.spec",
        "build_spec": "harness.spec",
        "run": "harness.engine",
    },
)

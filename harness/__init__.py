"""harness: evaluate language models and their interventions side by side on lm-eval tasks.

The public API is imported lazily so that `import harness` (and the CLI's start) stays fast.
"""

from importlib import import_module
from typing import Any

__all__ = ["HarnessError", "RunRecord", "RunSpec", "VariantSpec", "build_spec", "read_record", "run"]

_EXPORTS = {
    "HarnessError": "harness.errors",
    "RunRecord": "harness.records",
    "read_record": "harness.records",
    "RunSpec": "harness.spec",
    "VariantSpec": "harness.spec",
    "build_spec": "harness.spec",
    "run": "harness.run",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'harness' has no attribute {name!r}")

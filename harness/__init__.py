"""harness: evaluate language models and their interventions side by side on lm-eval tasks.

The Python API (docs/api.md): `evaluate` a list of model strings on tasks into a run, `compare`
runs, `load_run` a run folder back; `register_wrapper` (with `Param`, returning `Applied`),
`register_scorer` and `register_model` add a user's own wrappers, toxicity scorers and models,
which the CLI finds through entry points when they live in an installed package.

The public API is imported lazily, so `import harness` (and the CLI's start) imports neither torch
nor lm-eval. The package is layered (docs/architecture.md): cli | api > engine, leaderboard >
analysis > lm > variant > spec > wrappers > models > tasks > records > _util > errors.
"""

from typing import TYPE_CHECKING, Any

from harness._util.lazy import lazy_exports

if TYPE_CHECKING:
    from harness.api import Options, compare, evaluate
    from harness.engine import run
    from harness.errors import HarnessError
    from harness.models.catalog import HubRepo, LocalModel, PackagedGGUF, register_model
    from harness.records import Run, RunRecord, load_run, read_record
    from harness.spec import RunSpec, VariantSpec, build_spec
    from harness.tasks.scorers import Scorer, ScorerIdentity, register_scorer
    from harness.wrappers import Applied, Param, register_wrapper

__all__ = [
    "Applied",
    "HarnessError",
    "HubRepo",
    "LocalModel",
    "Options",
    "PackagedGGUF",
    "Param",
    "Run",
    "RunRecord",
    "RunSpec",
    "Scorer",
    "ScorerIdentity",
    "VariantSpec",
    "__version__",
    "build_spec",
    "compare",
    "evaluate",
    "load_run",
    "read_record",
    "register_model",
    "register_scorer",
    "register_wrapper",
    "run",
]

_exported = lazy_exports(
    "harness",
    {
        "Options": "harness.api",
        "compare": "harness.api",
        "evaluate": "harness.api",
        "HarnessError": "harness.errors",
        "HubRepo": "harness.models.catalog",
        "LocalModel": "harness.models.catalog",
        "PackagedGGUF": "harness.models.catalog",
        "register_model": "harness.models.catalog",
        "Run": "harness.records",
        "RunRecord": "harness.records",
        "load_run": "harness.records",
        "read_record": "harness.records",
        "RunSpec": "harness.spec",
        "VariantSpec": "harness.spec",
        "build_spec": "harness.spec",
        "Scorer": "harness.tasks.scorers",
        "ScorerIdentity": "harness.tasks.scorers",
        "register_scorer": "harness.tasks.scorers",
        "Applied": "harness.wrappers",
        "Param": "harness.wrappers",
        "register_wrapper": "harness.wrappers",
        "run": "harness.engine",
    },
)[0]


def __dir__() -> list[str]:
    return sorted(__all__)


def __getattr__(name: str) -> Any:
    if name == "__version__":  # read from the installed package's metadata only when asked
        from harness._util.versions import version_of

        return version_of("harness")
    return _exported(name)

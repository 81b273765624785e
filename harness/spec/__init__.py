"""Run specs: the frozen description of a run (variants x tasks and its settings), parsed from
flags, config files and model strings, and checked before anything loads.

`OPTIONS` (harness.spec._options) is the one source of a run's settings, their defaults and help.
Exports are lazy: the CLI reads the options at start without importing yaml or the record schema.
"""

from typing import TYPE_CHECKING

from harness._util.lazy import lazy_exports

if TYPE_CHECKING:
    from harness.spec._options import (
        DEFAULT_BATCH_SIZE,
        DEFAULT_DEVICE,
        DEFAULT_SAMPLES,
        DEFAULT_SEED,
        DEFAULT_SHARD_SIZE,
        DEFAULT_TASKS,
        DEFAULT_TOXICITY_SAMPLES,
        FIELDS,
        OPTIONS,
        Option,
        option,
    )
    from harness.spec._spec import RunSpec, VariantSpec, build_spec, check_fewshot, check_run, expand_sweeps, load_config, sweep_size

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_DEVICE",
    "DEFAULT_SAMPLES",
    "DEFAULT_SEED",
    "DEFAULT_SHARD_SIZE",
    "DEFAULT_TASKS",
    "DEFAULT_TOXICITY_SAMPLES",
    "FIELDS",
    "OPTIONS",
    "Option",
    "RunSpec",
    "VariantSpec",
    "build_spec",
    "check_fewshot",
    "check_run",
    "expand_sweeps",
    "load_config",
    "option",
    "sweep_size",
]

__getattr__, __dir__ = lazy_exports(
    "harness.spec",
    {
        "DEFAULT_BATCH_SIZE": "harness.spec._options",
        "DEFAULT_DEVICE": "harness.spec._options",
        "DEFAULT_SAMPLES": "harness.spec._options",
        "DEFAULT_SEED": "harness.spec._options",
        "DEFAULT_SHARD_SIZE": "harness.spec._options",
        "DEFAULT_TASKS": "harness.spec._options",
        "DEFAULT_TOXICITY_SAMPLES": "harness.spec._options",
        "FIELDS": "harness.spec._options",
        "OPTIONS": "harness.spec._options",
        "Option": "harness.spec._options",
        "option": "harness.spec._options",
        "RunSpec": "harness.spec._spec",
        "VariantSpec": "harness.spec._spec",
        "build_spec": "harness.spec._spec",
        "check_fewshot": "harness.spec._spec",
        "check_run": "harness.spec._spec",
        "expand_sweeps": "harness.spec._spec",
        "load_config": "harness.spec._spec",
        "sweep_size": "harness.spec._spec",
    },
)

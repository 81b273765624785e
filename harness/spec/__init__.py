"""Run specs: the frozen description of a run (variants x tasks and its settings), parsed from
flags, config files and model strings, and checked before anything loads."""

from harness.spec._spec import DEFAULT_TASKS, RunSpec, VariantSpec, build_spec, expand_sweeps, load_config

__all__ = ["DEFAULT_TASKS", "RunSpec", "VariantSpec", "build_spec", "expand_sweeps", "load_config"]

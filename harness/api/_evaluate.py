"""`harness.evaluate`: `harness eval` as a function, for notebooks and scripts.

It takes the run options of `harness eval` (harness.spec's OPTIONS) by name, builds the same spec
(the task list is what the task index knows), runs it in this process and returns the run: its
record and its folder. The record's `command` is the `harness eval` command line that makes the
same run, so `harness reproduce` and the report read an API run like any other.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypedDict, Unpack

from harness._util.environ import caller_process_kept
from harness._util.registry import did_you_mean
from harness.errors import HarnessError
from harness.records._runs import Run
from harness.spec._options import OPTIONS, Option, fits


class Options(TypedDict, total=False):
    """The options of `harness eval` (`--num-fewshot` is `num_fewshot`), each as the CLI reference
    describes it; the values a --config file may hold, paths too."""

    limit: int | str | Mapping[str, int] | None
    """Documents per task: N, "N,TASK=M" or {"default": N, TASK: M}."""
    num_fewshot: int | None
    batch_size: int | Literal["auto"]
    device: str
    seed: int
    data_dir: str | os.PathLike[str] | None
    include_path: str | list[str]
    """Folders of lm-eval task YAML whose tasks `tasks` may name."""
    output_dir: str | os.PathLike[str]
    samples: Literal["public", "full"]
    no_base: bool
    no_cache: bool
    scorer: str | None
    toxicity_samples: int | Literal["greedy"]


_KINDS = {str: "text", int: "an integer", bool: "True or False", list: "a list of text", dict: "a mapping of task to integer"}


def evaluate(
    models: str | Sequence[str] | None = None,
    tasks: str | Sequence[str] | None = None,
    *,
    yes: bool = False,
    **options: Unpack[Options],
) -> Run:
    """Evaluate each model string (a variant and, unless `no_base=True`, its base) on `tasks` (names
    or groups; default: `harness eval`'s) with `options` (see `Options`), write the run folder under
    `output_dir` and return the run: `.record` (the RunRecord) and `.folder`.

    Bad input raises HarnessError with the one line `harness eval` would print. `yes=True` runs
    sweeps of more than 100 variants. The caller's loggers, warning filters and environment are as
    they were when it returns."""
    given = _given(models, tasks, dict(options))
    with caller_process_kept():  # around the imports too: transformers sets its logger's level on import
        from harness.engine._run import run
        from harness.spec._spec import build_spec, requested_tasks
        from harness.tasks.index import include_paths, known_names, task_manager

        manager = task_manager(include=include_paths(given.get("include_path")), names=requested_tasks(given))
        spec = build_spec(given, known_names(manager), yes=yes)
        record, folder = run(spec, command(given, yes))
    return Run(record, folder)


def _given(models: str | Sequence[str] | None, tasks: str | Sequence[str] | None, options: dict[str, Any]) -> dict[str, Any]:
    """The options as `build_spec` takes them from a --config file, each checked to be of a type its
    option accepts (so `no_base="false"` is refused, not read as unset)."""
    settings = {o.name: o for o in OPTIONS}
    for name in options:
        if name not in settings or name in ("model", "tasks"):
            known = [n for n in settings if n not in ("model", "tasks")]
            hint = " (give it as models=...)" if name == "model" else did_you_mean(name, known)
            raise HarnessError(f"harness.evaluate: unknown option {name!r}{hint}")
    given = {"model": models, "tasks": tasks, **options}
    return {name: _checked(settings[name], value) for name, value in given.items() if value is not None}


def _checked(setting: Option, value: Any) -> Any:
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(value, Mapping):
        value = dict(value)
    if not fits(setting, value):
        kinds = " or ".join(_KINDS[kind] for kind in setting.accepts)
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:60] + "..."
        argument = "models" if setting.name == "model" else setting.name
        raise HarnessError(f"harness.evaluate: {argument} must be {kinds}, got {shown}")
    return value


def command(given: Mapping[str, Any], yes: bool = False) -> list[str]:
    """The `harness eval` command line that gives the same options as `given`."""
    argv = ["harness", "eval"]
    for setting in OPTIONS:
        value = given.get(setting.name)
        if value is None or (setting.switch and value is False):
            continue
        if setting.switch:
            argv.append(setting.flag)
        elif isinstance(value, list) and setting.repeatable:
            for item in value:
                argv += [setting.flag, item]
        elif isinstance(value, list):
            argv += [setting.flag, ",".join(value)]
        elif isinstance(value, dict):
            argv += [setting.flag, ",".join(str(n) if task == "default" else f"{task}={n}" for task, n in value.items())]
        else:
            argv += [setting.flag, str(value)]
    return [*argv, "--yes"] if yes else argv

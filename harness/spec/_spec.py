"""RunSpec: what to evaluate, parsed from flags and a YAML --config, checked before anything loads.

A bad spec fails here with one line (HarnessError): unknown model or task (with suggestions), a
non-positive --limit, an unreadable data directory, an unknown wrapper.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness._util.paths import DEFAULT_OUTPUT_DIR
from harness._util.registry import did_you_mean
from harness.errors import HarnessError
from harness.models import DEFAULT_MODEL, is_syntactically_known
from harness.records._schema import SampleMode
from harness.tasks import data
from harness.tasks.toxicity import Samples, check_scorer_name, parse_samples
from harness.wrappers import WRAPPERS, WrapperSpec


@dataclass(frozen=True)
class VariantSpec:
    """A parsed model string: `BASE[+WRAPPER[:key=value,...]]...`, its wrappers checked."""

    model: str
    base: str
    wrappers: tuple[WrapperSpec, ...] = ()

    @classmethod
    def parse(cls, model: str) -> VariantSpec:
        base, *segments = model.strip().split("+")
        if not base:
            raise HarnessError(f"model string {model!r} has no base model")
        is_syntactically_known(base)
        wrappers = []
        for segment in segments:
            name, params = _segment(segment, model)
            if any("|" in value for _, value in params):
                raise HarnessError(f"{model!r} is a sweep; expand it with expand_sweeps first")
            WRAPPERS.get(name).resolve(dict(params))
            wrappers.append(WrapperSpec(name, params))
        return cls(model, base, tuple(wrappers))

    def resolved(self) -> list[tuple[str, dict[str, Any]]]:
        """Each wrapper's name and its parameters, checked, defaults filled in."""
        return [(w.name, WRAPPERS.get(w.name).resolve(dict(w.params))) for w in self.wrappers]


def _segment(segment: str, model: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """`NAME:key=value,...` -> (NAME, ((key, value), ...)). A comma-separated piece without `=`
    continues the previous value, so values may hold commas (`bits=8@0-8,4@9-29`)."""
    name, _, arg_text = segment.partition(":")
    if not name:
        raise HarnessError(f"empty wrapper name in {model!r}")
    params: list[list[str]] = []
    for item in filter(None, arg_text.split(",")):
        key, sep, value = item.partition("=")
        if sep and key:
            if any(k == key for k, _ in params):
                raise HarnessError(f"parameter {key!r} given twice in {model!r}")
            params.append([key, value])
        elif params:
            params[-1][1] += "," + item
        else:
            raise HarnessError(f"bad wrapper parameter {item!r} in {model!r}: expected key=value")
    return name, tuple((k, v) for k, v in params)


def expand_sweeps(model: str) -> list[str]:
    """`|` inside parameter values makes a sweep: one model string per combination, in order."""
    base, *segments = model.strip().split("+")
    options: list[list[str]] = [[base]]
    for segment in segments:
        name, params = _segment(segment, model)
        combos: list[list[tuple[str, str]]] = [[]]
        for key, value in params:
            combos = [[*c, (key, v)] for c in combos for v in value.split("|")]
        options.append([f"{name}:{','.join(f'{k}={v}' for k, v in c)}" if c else name for c in combos])
    return ["+".join(parts) for parts in itertools.product(*options)]


@dataclass(frozen=True)
class RunSpec:
    """One run: every variant on every task, with the settings they share."""

    variants: tuple[VariantSpec, ...]
    tasks: tuple[str, ...]
    limit: int | None = None
    """Documents per task (the first N); None: all."""
    limit_per_task: tuple[tuple[str, int], ...] = ()
    """Overrides of `limit` for named tasks or groups (`--limit 50,wikitext2_ppl=3`)."""
    num_fewshot: int | None = None
    batch_size: int | str = 8
    device: str = "auto"
    seed: int = 1234
    data_dir: Path | None = None
    output_dir: Path = DEFAULT_OUTPUT_DIR
    samples: SampleMode = "public"
    scorer: str | None = None
    """The toxicity scorer (None: harness.tasks.scorers.DEFAULT_SCORER)."""
    toxicity_samples: Samples = 25
    """Continuations per toxicity prompt, or `greedy`."""
    no_base: bool = False
    """Evaluate only the variants named, not their bases."""
    given: dict[str, Any] = field(default_factory=dict, compare=False)
    """The fields as the user gave them (flags over --config), before defaults."""


_FIELDS = (
    "model",
    "tasks",
    "limit",
    "num_fewshot",
    "batch_size",
    "device",
    "seed",
    "data_dir",
    "output_dir",
    "samples",
    "scorer",
    "toxicity_samples",
    "no_base",
)
DEFAULT_TASKS = ("arithmetic",)


def load_config(path: str | os.PathLike) -> dict[str, Any]:
    """A --config YAML file: the same fields as the flags (`model` may be a list)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise HarnessError(f"cannot read config {path}: {exc.strerror}") from None
    try:
        loaded = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise HarnessError(f"config {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(loaded, dict):
        raise HarnessError(f"config {path} must be a mapping of field: value")
    unknown = sorted(set(loaded) - set(_FIELDS))
    if unknown:
        raise HarnessError(f"config {path}: unknown field {unknown[0]!r}{did_you_mean(unknown[0], list(_FIELDS))}")
    return loaded


def _as_list(value: Any) -> list[str]:
    items = value if isinstance(value, list | tuple) else [value]
    return [part.strip() for item in items for part in str(item).split(",") if part.strip()]


def _positive_int(name: str, value: Any, minimum: int) -> int:
    try:
        number = int(value)
        if str(number) != str(value).strip():
            raise ValueError
    except (TypeError, ValueError):
        raise HarnessError(f"--{name.replace('_', '-')} must be an integer, got {value!r}") from None
    if number < minimum:
        raise HarnessError(f"--{name.replace('_', '-')} must be >= {minimum}, got {number}")
    return number


def _variants(models: Any, no_base: bool) -> tuple[VariantSpec, ...]:
    """Each model string with its sweeps expanded, and (unless `no_base`) the base of every
    variant evaluated too, before its first variant, so each variant has its paired comparison."""
    given = [str(m).strip() for m in (models if isinstance(models, list | tuple) else [models]) if str(m).strip()]
    ordered: list[str] = []
    for model in given:
        for expanded in expand_sweeps(model):
            base = expanded.split("+", 1)[0]
            if not no_base and base != expanded and base not in ordered:
                ordered.append(base)
            if expanded not in ordered:
                ordered.append(expanded)
    if not ordered:
        raise HarnessError("no model given")
    return tuple(VariantSpec.parse(m) for m in ordered)


def _limits(value: Any, tasks: tuple[str, ...]) -> tuple[int | None, tuple[tuple[str, int], ...]]:
    """`--limit N`, `--limit N,TASK=M,...` or `--limit TASK=M` (a YAML mapping {TASK: M, default: N}
    too): a default and per-task overrides, for tasks or groups named in --tasks."""
    if value is None:
        return None, ()
    if isinstance(value, dict):
        items = [f"{k}={v}" if k != "default" else str(v) for k, v in value.items()]
    else:
        items = [part.strip() for part in str(value).split(",") if part.strip()]
    default, overrides = None, []
    for item in items:
        name, sep, number = item.rpartition("=")
        if not sep:
            default = _positive_int("limit", item, 1)
            continue
        if name not in tasks:
            raise HarnessError(f"--limit names {name!r}, which is not among --tasks{did_you_mean(name, list(tasks))}")
        overrides.append((name, _positive_int("limit", number, 1)))
    return default, tuple(overrides)


def build_spec(given: dict[str, Any], known_tasks: list[str]) -> RunSpec:
    """Validate `given` (flags over config, None for unset) into a RunSpec."""
    given = {k: v for k, v in given.items() if v is not None}
    variants = _variants(given.get("model", DEFAULT_MODEL), bool(given.get("no_base", False)))
    tasks = tuple(dict.fromkeys(_as_list(given.get("tasks", list(DEFAULT_TASKS)))))
    if not tasks:
        raise HarnessError("no tasks given")
    for task in tasks:
        if task not in known_tasks:
            raise HarnessError(f"unknown task {task!r}{did_you_mean(task, known_tasks)}; see `harness tasks`")
    limit, limit_per_task = _limits(given.get("limit"), tasks)
    batch_size = given.get("batch_size", 8)
    if str(batch_size) != "auto":
        batch_size = _positive_int("batch_size", batch_size, 1)
    samples = given.get("samples", "public")
    if samples not in ("public", "full"):
        raise HarnessError(f"--samples must be public or full, got {samples!r}")
    return RunSpec(
        variants=variants,
        tasks=tasks,
        limit=limit,
        limit_per_task=limit_per_task,
        num_fewshot=_positive_int("num_fewshot", given["num_fewshot"], 0) if "num_fewshot" in given else None,
        batch_size=batch_size,
        device=str(given.get("device", "auto")),
        seed=_positive_int("seed", given.get("seed", 1234), 0),
        data_dir=data.data_dir(given.get("data_dir")),
        output_dir=Path(given.get("output_dir", DEFAULT_OUTPUT_DIR)),
        samples=samples,
        scorer=check_scorer_name(str(given["scorer"])) if "scorer" in given else None,
        toxicity_samples=parse_samples(given.get("toxicity_samples", 25)),
        no_base=bool(given.get("no_base", False)),
        given=given,
    )

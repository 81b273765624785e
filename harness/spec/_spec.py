"""RunSpec: what to evaluate, parsed from flags and a YAML --config, checked before anything loads.

A bad spec fails here with one line (HarnessError): unknown model or task (with suggestions), a
non-positive --limit, an unreadable data directory, an unknown wrapper. What may be given, and its
default, is harness.spec._options.OPTIONS.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness._util.paths import DEFAULT_OUTPUT_DIR, check_output_folder
from harness._util.registry import did_you_mean
from harness.errors import HarnessError
from harness.models import DEFAULT_MODEL, is_syntactically_known
from harness.models.device import check_device_name
from harness.models.shape import ModelShape, model_shape
from harness.records._schema import SampleMode
from harness.spec._options import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_DEVICE,
    DEFAULT_SAMPLES,
    DEFAULT_SEED,
    DEFAULT_TOXICITY_SAMPLES,
    FIELDS,
    MAX_MODEL_STRING,
    MAX_NUM_FEWSHOT,
    MAX_SEED,
    MAX_VARIANTS,
    OPTIONS,
    SWEEP_CONFIRM,
    Option,
    defaults,
    fits,
    option,
)
from harness.tasks import data
from harness.tasks.index import include_paths
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
        base, *segments = _split(model)
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

    def check_model(self, shape: ModelShape, device: str) -> ModelShape:
        """The shape after every wrapper, each refused in one line if its parameters do not fit the
        model as the wrappers before it leave it (`exit:layer=99` on 30 layers), or the device."""
        for name, params in self.resolved():
            shape = WRAPPERS.get(name).check_model(params, shape, device)
        return shape


def _split(model: str) -> list[str]:
    """The base and wrapper segments of a model string, refused when it is too long or has no base."""
    if len(model) > MAX_MODEL_STRING:
        raise HarnessError(f"a model string of {len(model):,} characters ({model[:40]!r}...): at most {MAX_MODEL_STRING:,}")
    parts = model.strip().split("+")
    if not parts[0]:
        raise HarnessError(f"model string {model!r} has no base model (BASE+WRAPPER:key=value, e.g. {DEFAULT_MODEL}+quantize:bits=4)")
    return parts


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


def sweep_size(model: str) -> int:
    """How many model strings `expand_sweeps(model)` gives, counted without making them."""
    _, *segments = _split(model)
    size = 1
    for segment in segments:
        for _, value in _segment(segment, model)[1]:
            size *= value.count("|") + 1
    return size


def expand_sweeps(model: str) -> list[str]:
    """`|` inside parameter values makes a sweep: one model string per combination, in order."""
    base, *segments = _split(model)
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
    """One run: every variant on every task, with the settings they share, checked (build_spec makes
    it from the options in harness.spec._options, whose defaults these fields' defaults are)."""

    variants: tuple[VariantSpec, ...]
    tasks: tuple[str, ...]
    limit: int | None = None
    """Documents per task (the first N); None: all."""
    limit_per_task: tuple[tuple[str, int], ...] = ()
    """Overrides of `limit` for named tasks or groups (`--limit 50,wikitext2_ppl=3`)."""
    num_fewshot: int | None = None
    batch_size: int | str = DEFAULT_BATCH_SIZE
    device: str = DEFAULT_DEVICE
    seed: int = DEFAULT_SEED
    data_dir: Path | None = None
    include_path: tuple[Path, ...] = ()
    """Folders of lm-eval task YAML (`--include-path`), resolved, in the order given."""
    output_dir: Path = DEFAULT_OUTPUT_DIR
    samples: SampleMode = DEFAULT_SAMPLES
    scorer: str | None = None
    """The toxicity scorer (None: harness.tasks.scorers.DEFAULT_SCORER)."""
    toxicity_samples: Samples = DEFAULT_TOXICITY_SAMPLES
    """Continuations per toxicity prompt, or `greedy`."""
    no_base: bool = False
    """Evaluate only the variants named, not their bases."""
    no_cache: bool = False
    """Compute every answer: the request cache is neither read nor written."""
    given: dict[str, Any] = field(default_factory=dict, compare=False)
    """The fields as the user gave them (flags over --config), before defaults."""


def load_config(path: str | os.PathLike) -> dict[str, Any]:
    """A --config YAML file: the same fields as the flags (`model` may be a list)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise HarnessError(f"cannot read config {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise HarnessError(f"config {path} is not UTF-8 text (byte {exc.start})") from None
    try:
        loaded = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise HarnessError(f"config {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    except RecursionError:
        raise HarnessError(f"config {path} is nested too deeply") from None
    if not isinstance(loaded, dict):
        raise HarnessError(f"config {path} must be a mapping of field: value")
    unknown = sorted((str(k) for k in loaded if k not in FIELDS), key=str)
    if unknown:
        raise HarnessError(f"config {path}: unknown field {unknown[0]!r}{did_you_mean(unknown[0], list(FIELDS))}")
    settings = {o.name: o for o in OPTIONS}
    for name, value in loaded.items():
        _check_type(path, settings[name], value)
    return loaded


_KINDS = {str: "text", int: "an integer", bool: "true or false", list: "a list of text", dict: "a mapping of task: integer"}


def _check_type(path: str | os.PathLike, setting: Option, value: Any) -> None:
    """A config value of a type its option takes (YAML reads `false` as a boolean and `"false"` as
    text: the text would count as set); null leaves the option unset."""
    if value is None:
        return
    if not fits(setting, value):
        kinds = " or ".join(_KINDS[kind] for kind in setting.accepts)
        raise HarnessError(f"config {path}: {setting.name} must be {kinds}, got {_shown(value)}")


def _shown(value: Any, limit: int = 60) -> str:
    """`value` as it would be written, cut to `limit` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _as_list(value: Any) -> list[str]:
    items = value if isinstance(value, list | tuple) else [value]
    return [part.strip() for item in items for part in str(item).split(",") if part.strip()]


def _positive_int(name: str, value: Any, minimum: int, maximum: int | None = None) -> int:
    try:
        if isinstance(value, bool):
            raise ValueError
        number = int(value)
        if str(number) != str(value).strip():
            raise ValueError
    except (TypeError, ValueError):
        raise HarnessError(f"--{name.replace('_', '-')} must be an integer, got {_shown(value)}") from None
    if number < minimum:
        raise HarnessError(f"--{name.replace('_', '-')} must be >= {minimum}, got {number}")
    if maximum is not None and number > maximum:
        raise HarnessError(f"--{name.replace('_', '-')} must be <= {maximum}, got {number}")
    return number


def _variants(models: Any, no_base: bool, yes: bool) -> tuple[VariantSpec, ...]:
    """Each model string with its sweeps expanded, and (unless `no_base`) the base of every
    variant evaluated too, before its first variant, so each variant has its paired comparison.
    The variants are counted before they are made: sweeps that make many ask for `yes` (model
    strings listed one by one, as `harness reproduce` gives them, do not)."""
    given = [str(m).strip() for m in (models if isinstance(models, list | tuple) else [models]) if str(m).strip()]
    sizes = [sweep_size(model) for model in given]
    total = sum(sizes)
    if total > MAX_VARIANTS:
        raise HarnessError(f"the model strings make {total:,} variants, more than {MAX_VARIANTS:,} in one run: split the sweep")
    if total > SWEEP_CONFIRM and max(sizes) > 1 and not yes:
        raise HarnessError(
            f"the sweeps make {total:,} variants (more than {SWEEP_CONFIRM}), each a full evaluation: give --yes to run them all"
        )
    ordered: dict[str, None] = {}
    for model in given:
        for expanded in expand_sweeps(model):
            base = expanded.split("+", 1)[0]
            if not no_base and base != expanded:
                ordered.setdefault(base)
            ordered.setdefault(expanded)
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
    if not items:  # `--limit ,` must not quietly mean every document
        raise HarnessError(f"--limit must be an integer or TASK=N, got {_shown(value)}")
    default, overrides = None, {}
    for item in items:
        name, sep, number = item.rpartition("=")
        if not sep:
            if default is not None:
                raise HarnessError(f"--limit gives two limits for every task ({default} and {item})")
            default = _positive_int("limit", item, 1)
            continue
        if name not in tasks:
            raise HarnessError(f"--limit names {name!r}, which is not among --tasks{did_you_mean(name, list(tasks))}")
        if name in overrides:
            raise HarnessError(f"--limit names {name!r} twice")
        overrides[name] = _positive_int("limit", number, 1)
    return default, tuple(overrides.items())


def requested_tasks(given: dict[str, Any]) -> tuple[str, ...]:
    """The task and group names `given` asks for (the default when none), in order, once each."""
    value = given.get("tasks")
    return tuple(dict.fromkeys(_as_list(value if value is not None else option("tasks").default)))


def build_spec(given: dict[str, Any], known_tasks: list[str], yes: bool = False) -> RunSpec:
    """Validate `given` (flags over config, None for unset) into a RunSpec; what is not given takes
    its option's default. `yes`: run sweeps of more than SWEEP_CONFIRM variants."""
    given = {k: v for k, v in given.items() if v is not None}
    value = {**defaults(), **given}
    variants = _variants(value["model"], value["no_base"] is True, yes)
    tasks = requested_tasks(given)
    if not tasks:
        raise HarnessError("no tasks given")
    for task in tasks:
        if task not in known_tasks:
            raise HarnessError(f"unknown task {task!r}{did_you_mean(task, known_tasks)}; see `harness tasks`")
    limit, limit_per_task = _limits(value["limit"], tasks)
    batch_size = value["batch_size"]
    if str(batch_size) != "auto":
        batch_size = _positive_int("batch_size", batch_size, 1)
    samples, modes = value["samples"], option("samples").choices
    if samples not in modes:
        raise HarnessError(f"--samples must be {' or '.join(modes)}, got {samples!r}")
    return RunSpec(
        variants=variants,
        tasks=tasks,
        limit=limit,
        limit_per_task=limit_per_task,
        num_fewshot=_positive_int("num_fewshot", value["num_fewshot"], 0, MAX_NUM_FEWSHOT) if value["num_fewshot"] is not None else None,
        batch_size=batch_size,
        device=check_device_name(str(value["device"])),
        seed=_positive_int("seed", value["seed"], 0, MAX_SEED),
        data_dir=data.data_dir(value["data_dir"]),
        include_path=include_paths(value["include_path"]),
        output_dir=check_output_folder(value["output_dir"], "--output-dir"),
        samples=samples,
        scorer=check_scorer_name(str(value["scorer"])) if value["scorer"] is not None else None,
        toxicity_samples=parse_samples(value["toxicity_samples"]),
        no_base=value["no_base"] is True,
        no_cache=value["no_cache"] is True,
        given=given,
    )


def check_run(spec: RunSpec) -> str:
    """What can be checked of a built spec before any work, beyond build_spec's checks: that this
    machine has the device, that each base's files are what they claim (read, not loaded) and
    that every variant's wrapper parameters fit its base's shape. Returns the device resolved."""
    from harness.models.device import resolve_device

    device = resolve_device(spec.device)
    shapes: dict[str, ModelShape] = {}
    for variant in spec.variants:
        if variant.base not in shapes:
            shapes[variant.base] = model_shape(variant.base)
        variant.check_model(shapes[variant.base], device)
    return device


def check_fewshot(tasks: dict[str, Any], num_fewshot: int | None) -> None:
    """--num-fewshot against each loaded lm-eval task's pool of examples, refused in one line
    before evaluation rather than by lm-eval's sampler mid-run. lm-eval draws one example more when
    the pool is the evaluation split itself (to leave out the document being asked)."""
    if not num_fewshot:
        return
    for name, task in tasks.items():
        pool = task.fewshot_docs()
        size = 0 if pool is None else len(pool)
        needed = num_fewshot + (task.fewshot_cfg.split == task.config.test_split)
        if needed > size:
            raise HarnessError(
                f"--num-fewshot {num_fewshot}: task {name} has {size} examples to draw from"
                + (", the document itself left out" if needed > num_fewshot else "")
            )

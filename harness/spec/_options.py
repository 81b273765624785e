"""The settings of a run, each written once: its name, default and help.

`OPTIONS` is the one source of what a user may set for a run. `harness eval`'s flags
(harness.cli._eval), the keys a `--config` file may hold (`FIELDS`, checked by `load_config`), the
values `build_spec` falls back to and the CLI reference in the docs are all made from it; `RunSpec`
holds the checked values and takes its field defaults from the constants below.

Shared defaults live here once too: `DEFAULT_SEED` also seeds the bootstrap of `harness compare`,
`report` and `leaderboard build` (harness.analysis imports it).

This module stays light (no yaml, pydantic, numpy or torch): the CLI builds its parser from it at
start, and `harness --help` must stay fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness._util.paths import DEFAULT_OUTPUT_DIR
from harness.models.catalog import DEFAULT_MODEL
from harness.tasks.data import DATA_DIR_ENV

if TYPE_CHECKING:
    from harness.records._schema import SampleMode

DEFAULT_TASKS = ("arithmetic",)
DEFAULT_BATCH_SIZE = 8
DEFAULT_DEVICE = "auto"
DEFAULT_SEED = 1234
"""Seeds python, numpy, torch and few-shot sampling in a run, and the paired bootstrap."""
SAMPLE_MODES: tuple[SampleMode, ...] = ("public", "full")
"""The values of the record's SampleMode (harness.records, which imports pydantic; a test holds them equal)."""
DEFAULT_SAMPLES: SampleMode = "public"
DEFAULT_TOXICITY_SAMPLES = 25
"""The papers' protocol (harness.tasks.toxicity)."""
DEFAULT_SHARD_SIZE = 100
"""Documents per shard with `harness eval --executor ray` (harness.engine._executors): where a run is
computed, so neither an option nor in the record, but a default the CLI shows."""

MAX_SEED = 2**32 - 1
"""numpy's seeds are 32-bit, and the run seeds numpy with it."""
MAX_NUM_FEWSHOT = 100
"""More examples than any prompt of a small model's context holds; a larger number is a typo."""
SWEEP_CONFIRM = 100
"""Sweeps that make more variants than this ask for `harness eval --yes` (each variant is a full
evaluation). Not a --config field: YAML reads the key `yes` as the boolean true."""
MAX_VARIANTS = 100_000
"""Above this a run is refused even with `--yes`: split the sweep."""
MAX_MODEL_STRING = 2_000
"""Characters in one model string."""


@dataclass(frozen=True)
class Option:
    """One setting of a run: the `--config` key `name`, the `harness eval` flag `--name` (with `-`
    for `_`), the value used when neither gives one, and the help text."""

    name: str
    default: Any
    """None: unset (build_spec decides what unset means)."""
    text: str
    """The help; `{default}` in it is replaced by the default as the user would write it."""
    choices: tuple[str, ...] = ()
    repeatable: bool = False
    """The flag may be given several times (a list in --config)."""
    switch: bool = False
    """A flag without a value that sets True."""
    accepts: tuple[type, ...] = (str,)
    """The YAML types its --config value may have (`list`: a list of strings; `dict`: a mapping of
    name to integer); flags are always text."""

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def help(self) -> str:
        shown = ",".join(self.default) if isinstance(self.default, tuple) else self.default
        return self.text.format(default=shown)


OPTIONS = (
    Option("model", DEFAULT_MODEL, "model string (repeatable); default {default}", repeatable=True, accepts=(str, list)),
    Option("tasks", DEFAULT_TASKS, "comma-separated tasks or groups; default {default}", accepts=(str, list)),
    Option("limit", None, "evaluate the first N documents of each task", accepts=(int, str, dict)),
    Option("num_fewshot", None, f"few-shot examples per prompt (at most {MAX_NUM_FEWSHOT})", accepts=(int, str)),
    Option("batch_size", DEFAULT_BATCH_SIZE, "an integer or 'auto' (default {default})", accepts=(int, str)),
    Option("device", DEFAULT_DEVICE, "cpu, cuda, cuda:N, mps or {default} (default)"),
    Option("seed", DEFAULT_SEED, "seed for python, numpy, torch and few-shot sampling (default {default})", accepts=(int, str)),
    Option("data_dir", None, f"local data directory (default ${DATA_DIR_ENV})"),
    Option(
        "include_path",
        (),
        "a folder of lm-eval task YAML whose tasks --tasks may name, after harness's and lm-eval's (repeatable)",
        repeatable=True,
        accepts=(str, list),
    ),
    Option("output_dir", DEFAULT_OUTPUT_DIR, "where the run folder goes (default {default}/, which git ignores)"),
    Option(
        "samples",
        DEFAULT_SAMPLES,
        "sample logs without ({default}, default) or with the documents' text",
        choices=SAMPLE_MODES,
    ),
    Option("no_base", False, "do not add each variant's base to the run", switch=True, accepts=(bool,)),
    Option(
        "no_cache",
        False,
        "compute every answer afresh: read no cached answer, keep none (converted weights and fitted artifacts are reused, verified)",
        switch=True,
        accepts=(bool,),
    ),
    Option(
        "scorer",
        None,
        "toxicity scorer (see `harness models`); default: detoxify when its weights are here, else the measured best offline one",
    ),
    Option(
        "toxicity_samples",
        DEFAULT_TOXICITY_SAMPLES,
        "continuations per toxicity prompt (default {default}) or 'greedy'",
        accepts=(int, str),
    ),
)
FIELDS = tuple(o.name for o in OPTIONS)
"""The keys of a --config file."""


def fits(setting: Option, value: Any) -> bool:
    """Whether `value` is of a type `setting` takes (a boolean only where it takes booleans: YAML and
    Python read `false` as one, and text "false" would count as set)."""
    ok = isinstance(value, setting.accepts) and (bool in setting.accepts or not isinstance(value, bool))
    if isinstance(value, list):
        ok = ok and all(isinstance(item, str) for item in value)
    if isinstance(value, dict):
        ok = ok and all(isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) for k, v in value.items())
    return ok


def option(name: str) -> Option:
    """The option called `name` (KeyError for another)."""
    return {o.name: o for o in OPTIONS}[name]


def defaults() -> dict[str, Any]:
    """Every option's default, by name."""
    return {o.name: o.default for o in OPTIONS}

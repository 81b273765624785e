"""Options that several commands share, each defined once here. Run settings (`--device`,
`--data-dir`, ...) are made from harness.spec's OPTIONS, so their help and default are the spec's.

Only light modules are imported here: every command's parser is built at start.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from harness.analysis import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES
from harness.spec import DEFAULT_DEVICE, DEFAULT_SEED, Option, option

if TYPE_CHECKING:
    Subcommands = argparse._SubParsersAction[argparse.ArgumentParser]
    Handler = Callable[[argparse.Namespace, Sequence[str]], int]
    """A command's `run(args, argv)`: its exit status; `argv` is the command line as given."""

OUTPUTS = ["table", "json"]


def command(sub: Subcommands, name: str, handler: Handler, **kwargs: Any) -> argparse.ArgumentParser:
    """The parser of subcommand `name`; `main` calls `handler` when it is chosen."""
    parser = sub.add_parser(name, **kwargs)
    parser.set_defaults(handler=handler)
    return parser


def add_option(parser: argparse.ArgumentParser, setting: Option, default: Any = None) -> None:
    """A run setting as a flag. `default` is what the command sees when the flag is not given
    (`harness eval` leaves None, so a --config value or the spec's default applies). A setting whose
    name has an underscore is also accepted as lm-eval spells its flags (`--num_fewshot`), an alias
    left out of the options the help lists (`add_lm_eval_flags` says so below them)."""
    _add_flag(parser, setting.flag, setting, default, setting.help)
    if "_" in setting.name:
        _add_flag(parser, f"--{setting.name}", setting, argparse.SUPPRESS, argparse.SUPPRESS)


def _add_flag(parser: argparse.ArgumentParser, flag: str, setting: Option, default: Any, help: str) -> None:
    if setting.switch:
        parser.add_argument(flag, dest=setting.name, action="store_true", default=default, help=help)
    else:
        parser.add_argument(
            flag,
            dest=setting.name,
            action="append" if setting.repeatable else "store",
            choices=list(setting.choices) or None,
            default=default,
            help=help,
        )


LM_EVAL_RENAMED = {"--output_path": "output_dir"}
"""lm-eval's flags that harness names otherwise: lm-eval flag -> harness option."""
LM_EVAL_NO_OP = "--log_samples"
"""lm-eval's flag for what harness always does (every run keeps its sample logs)."""


def add_lm_eval_flags(parser: argparse.ArgumentParser) -> None:
    """After the run options: lm-eval's spellings that are not an option's underscore alias
    (LM_EVAL_RENAMED, LM_EVAL_NO_OP), and a word on all of them in the help."""
    for flag, name in LM_EVAL_RENAMED.items():
        parser.add_argument(flag, dest=name, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    parser.add_argument(LM_EVAL_NO_OP, dest="lm_eval_log_samples", action="store_true", help=argparse.SUPPRESS)
    renamed = ", ".join(f"{flag} is --{name.replace('_', '-')}" for flag, name in LM_EVAL_RENAMED.items())
    parser.epilog = (
        "Options are also accepted as lm-eval spells its flags, with underscores (--num_fewshot, --batch_size);"
        f" lm-eval's {renamed}, and {LM_EVAL_NO_OP} is accepted and changes nothing (harness always keeps every"
        " document's sample log)."
    )


def add_data_dir(parser: argparse.ArgumentParser, help: str | None = None) -> None:
    """`--data-dir`, with the spec's help unless the command reads it differently."""
    parser.add_argument("--data-dir", dest="data_dir", help=help or option("data_dir").help)


def add_device(parser: argparse.ArgumentParser) -> None:
    add_option(parser, option("device"), default=DEFAULT_DEVICE)


def add_output(parser: argparse.ArgumentParser, help: str = "what to print") -> None:
    parser.add_argument("--output", choices=OUTPUTS, default=OUTPUTS[0], help=help)


def add_run(parser: argparse.ArgumentParser) -> None:
    """The positional RUN of the commands that read one run record."""
    parser.add_argument("run", metavar="RUN", help="run folder (or its record.json)")


def add_pareto(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument("--pareto", action="append", default=[], metavar="METRIC_A,METRIC_B", help=help)


def add_bootstrap(parser: argparse.ArgumentParser, confidence: bool = True) -> None:
    """The paired bootstrap's settings (harness.analysis): --resamples, --seed and, unless the
    command fixes it, --confidence."""
    parser.add_argument(
        "--resamples", type=int, default=DEFAULT_RESAMPLES, help=f"paired bootstrap resamples (default {DEFAULT_RESAMPLES})"
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"bootstrap seed (default {DEFAULT_SEED})")
    if confidence:
        parser.add_argument(
            "--confidence", type=float, default=DEFAULT_CONFIDENCE, help=f"interval coverage (default {DEFAULT_CONFIDENCE})"
        )

"""`harness eval`: evaluate models on tasks into a run record. Its run settings are harness.spec's
OPTIONS (flags over a --config file); the executor flags say where requests are computed."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING

from harness.cli._common import add_lm_eval_flags, add_option, add_output, command
from harness.spec import DEFAULT_SHARD_SIZE, FIELDS, OPTIONS
from harness.spec._options import SWEEP_CONFIRM

if TYPE_CHECKING:
    from harness.cli._common import Subcommands


def add_parser(sub: Subcommands) -> None:
    parser = command(sub, "eval", run, help="evaluate models on tasks into a run record")
    for setting in OPTIONS:
        add_option(parser, setting)
    add_lm_eval_flags(parser)
    parser.add_argument("--config", help="YAML file with the same fields; flags override it")
    parser.add_argument("--yes", action="store_true", help=f"run sweeps that make more than {SWEEP_CONFIRM} variants")
    add_output(parser, help="what to print at the end")
    parser.add_argument(
        "--executor",
        default="local",
        help="where requests are computed: this process (default) or a Ray cluster (pip install 'harness[ray]')",
    )
    parser.add_argument("--address", help="with --executor ray: the cluster to join (default: start a local one)")
    parser.add_argument(
        "--max-models-per-worker",
        dest="max_models_per_worker",
        help="with --executor ray: variants a worker holds built at once (default: from the model's size and the worker's memory)",
    )
    parser.add_argument("--shard-size", dest="shard_size", help=f"with --executor ray: documents per shard (default {DEFAULT_SHARD_SIZE})")


def run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from harness.analysis._table import print_json, print_table
    from harness.spec._spec import build_spec, load_config, requested_tasks
    from harness.tasks.index import include_paths, known_names, task_manager

    given = load_config(args.config) if args.config else {}
    given.update({name: getattr(args, name) for name in FIELDS if getattr(args, name) is not None})
    manager = task_manager(include=include_paths(given.get("include_path")), names=requested_tasks(given))
    spec = build_spec(given, known_names(manager), yes=args.yes)
    from harness.engine._executors import build_executor

    executor = build_executor(args.executor, args.address, args.max_models_per_worker, args.shard_size)

    from harness.engine._run import run as run_spec

    record, folder = run_spec(spec, ["harness", *argv], executor)
    if args.output == "json":
        print_json(record, folder)
    else:
        print_table(record, folder)
    return 0

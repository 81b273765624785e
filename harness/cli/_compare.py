"""`harness compare`: the paired comparison of each variant with its base, sweeps as curves, Pareto fronts."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from harness.cli._common import add_bootstrap, add_output, add_pareto, command

if TYPE_CHECKING:
    from harness.cli._common import Subcommands


def add_parser(sub: Subcommands) -> None:
    parser = command(sub, "compare", run, help="paired comparison of each variant with its base, sweeps as curves, Pareto fronts")
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run folders (or their record.json); a variant's base may be in another run")
    add_pareto(parser, help="a Pareto front over TASK/METRIC or cost/NAME axes (repeatable)")
    add_bootstrap(parser)
    parser.add_argument("--subtasks", action="store_true", help="also show the tasks inside groups in the table")
    add_output(parser)


def run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from harness.analysis._compare import format_table, summarize, to_json

    summary = summarize(args.runs, args.seed, args.resamples, args.confidence, args.pareto)
    print(json.dumps(to_json(summary), indent=1) if args.output == "json" else format_table(summary, args.subtasks))
    return 0

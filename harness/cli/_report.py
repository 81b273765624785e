"""`harness report`: a run's reproducibility report (report.md, report.html)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING

from harness.cli._common import add_bootstrap, add_pareto, add_run, command

if TYPE_CHECKING:
    from harness.cli._common import Subcommands


def add_parser(sub: Subcommands) -> None:
    parser = command(sub, "report", run, help="write a run's reproducibility report (report.md, report.html)")
    add_run(parser)
    parser.add_argument("--out", help="folder for the two files (default: the run folder)")
    add_pareto(parser, help="fronts to draw (default: each headline metric against each cost that varies)")
    # No --confidence: the report's intervals are at harness.analysis.DEFAULT_CONFIDENCE.
    add_bootstrap(parser, confidence=False)


def run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from harness.analysis._report import write_report

    for path in write_report(args.run, args.out, args.seed, args.resamples, pareto=args.pareto):
        print(path)
    return 0

"""`harness export`: a run's results in a shared schema other tools read (every_eval_ever 0.2.0)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING

from harness.cli._common import add_run, command

if TYPE_CHECKING:
    from harness.cli._common import Subcommands


def add_parser(sub: Subcommands) -> None:
    parser = command(sub, "export", run, help="write a run's results in a shared schema other tools read (every_eval_ever 0.2.0)")
    add_run(parser)
    parser.add_argument("--format", dest="fmt", default="every_eval_ever", help="every_eval_ever (the default and only one)")
    parser.add_argument("--out", required=True, help="folder for the files, one per variant and task")


def run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from harness.records._export import export_run

    for path in export_run(args.run, args.out, args.fmt):
        print(path)
    return 0

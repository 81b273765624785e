"""`harness tasks`: every task, group and tag `--tasks` may name, with where it is defined (harness,
lm-eval or an include path), its family, where its data is and whether it is here."""

from __future__ import annotations

import argparse
import fnmatch
from collections.abc import Sequence
from typing import TYPE_CHECKING

from harness.cli._common import add_data_dir, add_option, command
from harness.spec import option

if TYPE_CHECKING:
    from harness.cli._common import Subcommands


def add_parser(sub: Subcommands) -> None:
    parser = command(sub, "tasks", run, help="list tasks and groups with where they come from and their data")
    parser.add_argument("patterns", nargs="*", metavar="PATTERN", help="only the names matching these shell patterns (e.g. 'hella*')")
    add_data_dir(parser)
    add_option(parser, option("include_path"))


def run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from tabulate import tabulate

    from harness.tasks import data
    from harness.tasks.index import describe, include_paths, task_manager

    directory = data.data_dir(args.data_dir)
    infos = describe(task_manager(directory, include_paths(args.include_path)), directory)
    rows = [
        (t.name, t.kind, t.origin, t.family, t.source, t.present)
        for t in infos
        if not args.patterns or any(fnmatch.fnmatchcase(t.name, p) for p in args.patterns)
    ]
    print(tabulate(rows, headers=["task", "kind", "from", "family", "data", "present"]))
    print(f"\ndata directory: {directory or f'none (set --data-dir or ${data.DATA_DIR_ENV})'}")
    return 0

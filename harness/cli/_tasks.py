"""`harness tasks`: the tasks and groups, with their family and where their data is."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING

from harness.cli._common import add_data_dir, command

if TYPE_CHECKING:
    from harness.cli._common import Subcommands


def add_parser(sub: Subcommands) -> None:
    parser = command(sub, "tasks", run, help="list tasks and groups with their family and data")
    add_data_dir(parser)


def run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from tabulate import tabulate

    from harness.tasks import data
    from harness.tasks.index import describe, task_manager

    directory = data.data_dir(args.data_dir)
    rows = [(t.name, t.kind, t.family, t.source, t.present) for t in describe(task_manager(), directory)]
    print(tabulate(rows, headers=["task", "kind", "family", "source", "data present"]))
    print(f"\ndata directory: {directory or f'none (set --data-dir or ${data.DATA_DIR_ENV})'}")
    return 0

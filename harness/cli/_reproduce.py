"""`harness reproduce`: rerun a record's spec with an empty request cache and compare every number."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from harness.cli._common import add_data_dir, add_output, add_run, command
from harness.tasks.data import DATA_DIR_ENV

if TYPE_CHECKING:
    from harness.cli._common import Subcommands


def add_parser(sub: Subcommands) -> None:
    parser = command(sub, "reproduce", run, help="rerun a record's spec with an empty request cache and compare every number")
    add_run(parser)
    parser.add_argument("--batch-sizes", dest="batch_sizes", help="rerun at each of these batch sizes, e.g. 1,8 (default: the record's)")
    parser.add_argument("--tolerance", type=float, default=0.0, help="largest absolute difference that matches (default 0: exact)")
    parser.add_argument("--output-dir", dest="output_dir", help="where the reruns' records go (default: a new temporary folder)")
    add_data_dir(parser, help=f"data directory (default: the record's, else ${DATA_DIR_ENV})")
    add_output(parser)


def run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from harness._util.paths import check_output_folder
    from harness.analysis._compare import to_json
    from harness.engine._reproduce import format_table, parse_batch_sizes, reproduce

    if args.output_dir:
        check_output_folder(args.output_dir, "--output-dir")
    result = reproduce(args.run, ["harness", *argv], parse_batch_sizes(args.batch_sizes), args.tolerance, args.output_dir, args.data_dir)
    print(json.dumps({**to_json(result), "ok": result.ok}, indent=1, default=str) if args.output == "json" else format_table(result))
    return 0 if result.ok else 1

"""`harness fit`: fit a steering wrapper's artifact (directions, unit scores) to a file."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from harness.cli._common import add_data_dir, add_device, command
from harness.errors import HarnessError
from harness.models import DEFAULT_MODEL

if TYPE_CHECKING:
    from harness.cli._common import Subcommands


def add_parser(sub: Subcommands) -> None:
    parser = command(sub, "fit", run, help="fit a steering wrapper's artifact (directions, unit scores) to a file")
    parser.add_argument("wrapper", help="a fitted wrapper: see `harness models`")
    parser.add_argument("params", nargs="*", metavar="KEY=VALUE", help="the wrapper's parameters the fit depends on")
    parser.add_argument("--model", default=None, help=f"model string to fit on (default {DEFAULT_MODEL})")
    parser.add_argument("--out", required=True, help="the artifact file to write (.safetensors; its sidecar gets .json)")
    add_device(parser)
    add_data_dir(parser)


def run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from pathlib import Path

    from harness.engine._fit import fit_artifact
    from harness.tasks import data

    if args.data_dir:
        os.environ[data.DATA_DIR_ENV] = str(data.data_dir(args.data_dir))
    given: dict[str, str] = {}
    for item in args.params:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise HarnessError(f"bad parameter {item!r}: expected KEY=VALUE")
        given[key] = value
    sidecar = fit_artifact(args.wrapper, given, args.model or DEFAULT_MODEL, Path(args.out), args.device)
    print(json.dumps({"artifact": args.out, **sidecar}, indent=1, sort_keys=True))
    return 0

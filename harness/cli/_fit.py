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

    from harness._util.paths import check_output_folder
    from harness.engine._fit import fit_artifact
    from harness.models.device import resolve_device
    from harness.models.shape import model_shape
    from harness.spec._spec import VariantSpec
    from harness.tasks import data
    from harness.wrappers import WRAPPERS

    if args.data_dir:
        os.environ[data.DATA_DIR_ENV] = str(data.data_dir(args.data_dir))
    given: dict[str, str] = {}
    for item in args.params:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise HarnessError(f"bad parameter {item!r}: expected KEY=VALUE")
        given[key] = value
    # What the fit would only find out after loading the model: the device, where the artifact
    # goes, and the parameters against the model's shape (read from its files).
    device = resolve_device(args.device)
    out = Path(args.out)
    if out.is_dir():
        raise HarnessError(f"--out {out} is a folder: give the artifact's file name (.safetensors)")
    check_output_folder(out.parent, f"--out {out}: its folder")
    spec = VariantSpec.parse(args.model or DEFAULT_MODEL)
    wrapper = WRAPPERS.get(args.wrapper)
    if wrapper.fitter is not None:
        wrapper.check_model(wrapper.resolve(given), spec.check_model(model_shape(spec.base), device), device)
    sidecar = fit_artifact(args.wrapper, given, spec.model, out, device)
    print(json.dumps({"artifact": args.out, **sidecar}, indent=1, sort_keys=True))
    return 0

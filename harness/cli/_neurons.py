"""`harness neurons`: decode MLP neurons through the LM head to their top tokens."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from harness.cli._common import add_device, add_output, command
from harness.errors import HarnessError
from harness.models import DEFAULT_MODEL

if TYPE_CHECKING:
    from harness.cli._common import Subcommands


def add_parser(sub: Subcommands) -> None:
    parser = command(sub, "neurons", run, help="decode MLP neurons through the LM head to their top tokens")
    parser.add_argument("--model", default=None, help=f"model string (default {DEFAULT_MODEL})")
    parser.add_argument("--layer", type=int, required=True, help="decoder layer, from 0")
    parser.add_argument("--top", type=int, default=10, help="neurons to list (default 10)")
    parser.add_argument("--concept", default=None, help="a one-token string: list the neurons that promote it most")
    parser.add_argument("--tokens", type=int, default=10, help="decoded tokens per neuron (default 10)")
    add_device(parser)
    add_output(parser)


def run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from harness.engine._neurons import list_neurons
    from harness.models.device import resolve_device
    from harness.models.shape import model_shape
    from harness.spec._spec import VariantSpec
    from harness.wrappers.units import layer_in_range

    if args.top < 1 or args.tokens < 1:
        raise HarnessError("--top and --tokens must be at least 1")
    # The layer against the model's shape (read from its files), before it loads.
    device = resolve_device(args.device)
    spec = VariantSpec.parse(args.model or DEFAULT_MODEL)
    layer_in_range(args.layer, spec.check_model(model_shape(spec.base), device).depth, "neurons")
    rows = list_neurons(spec.model, args.layer, args.top, args.concept, args.tokens, device)
    if args.output == "json":
        print(json.dumps(rows, indent=1))
        return 0
    from tabulate import tabulate

    score = f"logit of {args.concept!r}" if args.concept else "top logit"
    table = [(r["index"], round(r["score"], 4), " ".join(repr(t) for t in r["tokens"])) for r in rows]
    print(tabulate(table, headers=["neuron", score, "top tokens"]))
    return 0

"""`harness experts`: build or list the experts (seeded fine-tunes of the default model, merge sources)."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from harness.cli._common import add_data_dir, command

if TYPE_CHECKING:
    from harness.cli._common import Subcommands


def add_parser(sub: Subcommands) -> None:
    parser = command(sub, "experts", run, help="build or list the experts (seeded fine-tunes of the default, merge sources)")
    experts_sub = parser.add_subparsers(dest="experts_command", required=True)
    build = experts_sub.add_parser("build", help="fine-tune the experts missing from the cache (minutes each)")
    build.add_argument("--name", action="append", help="an expert to build (repeatable; default all)")
    add_data_dir(build)
    listing = experts_sub.add_parser("list", help="the experts, their recipes and whether each is built")
    add_data_dir(listing, help="the data directory (an expert's folder is keyed by its training data's sha256)")


def run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from harness.models import resolve_model
    from harness.models.experts import EXPERTS
    from harness.models.experts.build import built_folder, ensure_built, is_built, read_build
    from harness.tasks import data

    if args.data_dir:
        os.environ[data.DATA_DIR_ENV] = str(data.data_dir(args.data_dir))
    if args.experts_command == "list":
        for name, recipe in EXPERTS:
            base = resolve_model(recipe.base)
            state = str(built_folder(recipe, base)) if is_built(recipe, base) else "not built"
            print(f"expert:{name}  steps={recipe.steps} batch={recipe.batch} lr={recipe.lr} seed={recipe.seed}  {recipe.doc}\n    {state}")
        return 0
    recipes = [EXPERTS.get(name) for name in args.name] if args.name else [recipe for _, recipe in EXPERTS]
    for recipe in recipes:
        folder = ensure_built(recipe, resolve_model(recipe.base))
        facts = read_build(folder)
        print(
            json.dumps(
                {
                    "expert": f"expert:{recipe.name}",
                    "folder": str(folder),
                    "seconds": facts["seconds"],
                    "train_loss": {k: v for k, v in facts["train_loss"].items() if k != "per_step"},
                    "held_out_loss": facts["held_out_loss"],
                    "disjointness": facts["data"]["disjointness"],
                    "weights_sha256": facts["weights_sha256"],
                },
                indent=1,
            )
        )
    return 0

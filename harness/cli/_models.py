"""`harness models`: the model catalog, the registered wrappers and the toxicity scorers."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING

from harness.cli._common import command

if TYPE_CHECKING:
    from harness.cli._common import Subcommands


def add_parser(sub: Subcommands) -> None:
    command(sub, "models", run, help="list the model catalog and the registered wrappers")


def run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from tabulate import tabulate

    from harness.models import CATALOG
    from harness.tasks.scorers import DEFAULT_SCORER, SCORERS
    from harness.wrappers import WRAPPERS

    rows = [(name, type(e.source).__name__, e.license, e.description) for name, e in CATALOG]
    print(tabulate(rows, headers=["model", "source", "license", "description"], maxcolwidths=[None, None, None, 70]))
    print("\nAlso accepted: hf:ORG/NAME[@REVISION], a local model folder (safetensors), a .gguf file.")
    print("\nWrappers (BASE+WRAPPER:key=value,...; `|` in a value sweeps):")
    wrappers = [
        (name if w.plugin is None else f"{name}\n({w.plugin})", w.doc, "\n".join(p.describe() for p in w.params)) for name, w in WRAPPERS
    ]
    print(tabulate(wrappers, headers=["wrapper", "what it does", "parameters: type [range] = default"], maxcolwidths=[None, 40, 80]))
    names = [f"{name} (default)" if name == DEFAULT_SCORER else name for name in SCORERS.names()]
    print(f"\nToxicity scorers (--scorer; docs/scorers.md): {', '.join(names)}")
    return 0

"""The end-of-run summary: a table of variant x task x metric and the commands that read the run
next, or the same results as JSON for scripts."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from tabulate import tabulate

from harness.records._schema import InterventionRecord, RunRecord


def _rows(record: RunRecord) -> list[dict[str, Any]]:
    names = {v.identity: v.model for v in record.variants}
    return [
        {
            "model": names[r.variant],
            "variant": r.variant[:12],
            "task": r.task,
            "metric": metric,
            "value": m.value,
            "stderr": m.stderr,
            "n": r.n_samples,
        }
        for r in record.results
        for metric, m in r.metrics.items()
    ]


def print_table(record: RunRecord, folder: Path) -> None:
    rows = [
        [
            r["model"],
            r["variant"],
            r["task"],
            r["metric"],
            "-" if r["value"] is None else f"{r['value']:.4f}",
            "-" if r["stderr"] is None else f"± {r['stderr']:.4f}",
            r["n"] if r["n"] is not None else "",
        ]
        for r in _rows(record)
    ]
    print(tabulate(rows, headers=["model", "variant", "task", "metric", "value", "stderr", "n"]))
    print(f"\nrecord: {folder / 'record.json'}  ({record.timings.total_seconds:.1f} s)")
    commands = next_commands(record, folder)
    width = max(len(command) for command, _ in commands)
    print("next:")
    for command, what in commands:
        print(f"  {command:<{width}}   {what}")


def next_commands(record: RunRecord, folder: Path) -> list[tuple[str, str]]:
    """(command, what it gives) for the run in `folder`: its report, and the paired comparison
    when the run has a variant to pair with its base (in the run, or, with --no-base, in another)."""
    run = shlex.quote(str(folder))
    commands = [(f"harness report {run}", "its reproducibility report (report.md, report.html in the run folder)")]
    identities = {v.identity for v in record.variants}
    variants = [v for v in record.variants if v.intervention.wrappers]
    if any(InterventionRecord(base=v.intervention.base).identity() in identities for v in variants):
        commands.append((f"harness compare {run}", "each variant against its base, document by document"))
    elif variants:
        commands.append((f"harness compare {run} BASE_RUN", "each variant against its base, evaluated in another run"))
    return commands


def print_json(record: RunRecord, folder: Path) -> None:
    print(json.dumps({"record": str(folder / "record.json"), "results": _rows(record)}, indent=2))

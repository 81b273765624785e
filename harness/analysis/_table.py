"""The end-of-run summary: a table of variant x task x metric, or the same as JSON for scripts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tabulate import tabulate

from harness.records._schema import RunRecord


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


def print_json(record: RunRecord, folder: Path) -> None:
    print(json.dumps({"record": str(folder / "record.json"), "results": _rows(record)}, indent=2))

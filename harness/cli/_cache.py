"""`harness cache`: list, size, verify and clear what harness caches (harness.engine._cache)."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from harness.cli._common import add_output, command
from harness.engine._cache import KINDS, Entry, Finding, entries, remove, select, totals, verify
from harness.errors import HarnessError

if TYPE_CHECKING:
    from harness.cli._common import Subcommands

EXIT_BAD_ENTRIES = 1


def add_parser(sub: Subcommands) -> None:
    parser = command(sub, "cache", run, help="list, size, verify or clear what harness caches ($HARNESS_CACHE_DIR)")
    cache_sub = parser.add_subparsers(dest="cache_command", required=True)
    listing = cache_sub.add_parser("list", help="every cache entry: kind, name, size, age; answers and stale answers of request caches")
    _add_kind(listing)
    _add_variant(listing)
    add_output(listing)
    size = cache_sub.add_parser("size", help="entries and bytes per kind of cache")
    _add_kind(size)
    add_output(size)
    check = cache_sub.add_parser(
        "verify", help="check every entry in full against its checksums or manifest; remove the bad ones (exit 1 if any)"
    )
    _add_kind(check)
    add_output(check)
    clear = cache_sub.add_parser("clear", help="remove the entries selected (at least one selector; they are recomputed when needed)")
    _add_kind(clear)
    _add_variant(clear)
    clear.add_argument("--older-than", type=float, metavar="DAYS", help="entries last written more than DAYS days ago")
    clear.add_argument("--all", action="store_true", help="every entry of every kind")
    add_output(clear)


def _add_kind(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kind", action="append", choices=KINDS, help="only this kind of cache (repeatable)")


def _add_variant(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--variant", metavar="IDENTITY_PREFIX", help="only the request caches of variants whose identity starts with this")


def run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    now = time.time()
    variant = getattr(args, "variant", None)
    if variant is not None:
        if not variant:
            raise HarnessError("--variant: give the start of a variant's identity (harness cache list --kind requests)")
        if args.kind and "requests" not in args.kind:
            raise HarnessError("--variant selects request caches; --kind leaves them out")
    if args.cache_command == "clear":
        return _clear(args, now)
    found = select(entries(args.kind or KINDS), args.kind, variant, None, now)
    if args.cache_command == "list":
        _print(args.output, [_listed(e, now) for e in found], ["kind", "name", "size", "age", "answers", "stale"], _list_row)
        return 0
    if args.cache_command == "size":
        sums = totals(found)
        kinds = args.kind or KINDS
        if args.output == "json":
            print(json.dumps({kind: {"entries": sums[kind][0], "bytes": sums[kind][1]} for kind in kinds}, indent=1))
        else:
            rows = [[kind, sums[kind][0], _size(sums[kind][1])] for kind in kinds]
            rows.append(["total", sum(sums[k][0] for k in kinds), _size(sum(sums[k][1] for k in kinds))])
            _table(rows, ["kind", "entries", "size"])
        return 0
    said: list[Finding] = []

    def heard(finding: Finding) -> None:
        said.append(finding)
        if args.output != "json":
            print(f"bad {finding.entry.kind} {finding.entry.name}: {finding.problem}; {finding.action}", flush=True)

    checked, bad = verify(found, heard)
    if args.output == "json":
        bad_rows = [{"kind": f.entry.kind, "name": f.entry.name, "problem": f.problem, "action": f.action} for f in bad]
        print(json.dumps({"checked": checked, "bad": bad_rows}, indent=1))
    else:
        print(f"checked {checked} entries: {len(bad)} bad")
    return EXIT_BAD_ENTRIES if bad else 0


def _clear(args: argparse.Namespace, now: float) -> int:
    if args.older_than is not None and args.older_than < 0:
        raise HarnessError(f"--older-than {args.older_than:g}: give a number of days, 0 or more")
    chosen = [args.kind, args.variant, args.older_than]
    if args.all and any(c is not None for c in chosen):
        raise HarnessError("--all clears every entry; give it alone, or select with --kind, --variant and --older-than")
    if not args.all and all(c is None for c in chosen):
        raise HarnessError("harness cache clear removes nothing unless told what: give --kind, --variant, --older-than or --all")
    found = select(entries(args.kind or KINDS), args.kind, args.variant, args.older_than, now)
    for entry in found:
        remove(entry)
    removed = [{"kind": e.kind, "name": e.name, "bytes": e.size} for e in found]
    if args.output == "json":
        print(json.dumps({"removed": removed, "bytes": sum(e.size for e in found)}, indent=1))
        return 0
    for entry in found:
        print(f"removed {entry.kind} {entry.name} ({_size(entry.size)})")
    print(f"removed {len(found)} entries, {_size(sum(e.size for e in found))}" if found else "nothing to remove")
    return 0


def _listed(entry: Entry, now: float) -> dict[str, Any]:
    return {
        "kind": entry.kind,
        "name": entry.name,
        "bytes": entry.size,
        "age_days": round(entry.age_days(now), 4),
        "rows": entry.rows,
        "stale": entry.stale,
        "leftover": entry.leftover,
        "paths": [str(p) for p in entry.paths],
    }


def _list_row(row: dict[str, Any]) -> list[Any]:
    name = f"{row['name']} (left by an unfinished build)" if row["leftover"] else row["name"]
    return [row["kind"], name, _size(row["bytes"]), _age(row["age_days"]), _blank(row["rows"]), _blank(row["stale"])]


def _print(output: str, rows: list[dict[str, Any]], headers: list[str], row: Callable[[dict[str, Any]], list[Any]]) -> None:
    if output == "json":
        print(json.dumps(rows, indent=1))
    elif rows:
        _table([row(r) for r in rows], headers)
    else:
        print("no cache entries")


def _table(rows: list[list[Any]], headers: list[str]) -> None:
    from tabulate import tabulate

    print(tabulate(rows, headers=headers, disable_numparse=True))


def _blank(value: int | None) -> str:
    return "" if value is None else str(value)


_UNITS = ("B", "KB", "MB", "GB", "TB")


def _size(size: int) -> str:
    value, unit = float(size), 0
    while value >= 1000 and unit < len(_UNITS) - 1:
        value, unit = value / 1000, unit + 1
    return f"{size} B" if unit == 0 else f"{value:.1f} {_UNITS[unit]}"


def _age(days: float) -> str:
    if days < 1 / 24:
        return f"{days * 24 * 60:.0f} min"
    if days < 2:
        return f"{days * 24:.1f} h"
    return f"{days:.1f} d"

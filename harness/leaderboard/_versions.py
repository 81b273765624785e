"""Release numbers and changelogs: what changed since the previous release, and which number that needs.

major: a task's version changed (a new column has the task and metric of an existing one and
another version), or rows or columns retired (a reader's numbers disappear);
minor: new columns, or a cell's value changed; patch: new rows or new cells in existing columns.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from harness.errors import HarnessError
from harness.leaderboard._schema import ChangedValue, Changelog, Column, Release, Row, RunRef, VersionChange

Version = tuple[int, int, int]
LEVELS = ("none", "patch", "minor", "major")
_VERSION = re.compile(r"v?(\d+)\.(\d+)\.(\d+)")


def parse_version(text: str) -> Version:
    match = _VERSION.fullmatch(text.strip())
    if not match:
        raise HarnessError(f"bad release version {text!r}: expected MAJOR.MINOR.PATCH, e.g. 1.2.0")
    return int(match[1]), int(match[2]), int(match[3])


def show(version: Version) -> str:
    return "v{}.{}.{}".format(*version)


def bump(version: Version | None, level: str) -> Version:
    if version is None:
        return (1, 0, 0)
    major, minor, patch = version
    if level == "major":
        return (major + 1, 0, 0)
    if level == "minor":
        return (major, minor + 1, 0)
    if level == "patch":
        return (major, minor, patch + 1)
    return version


def changelog(previous: Release | None, columns: Sequence[Column], rows: Sequence[Row], runs: Sequence[RunRef]) -> Changelog:
    dirty = tuple(r.run_id for r in runs if r.git_dirty)
    if previous is None:
        return Changelog(
            previous=None,
            level="first",
            new_rows=tuple(r.identity for r in rows),
            new_columns=tuple(c.id for c in columns),
            new_runs=tuple(r.run_id for r in runs),
            dirty_runs=dirty,
        )
    old_runs = {r.run_id for r in previous.runs}
    new_runs = {r.run_id for r in runs}
    old_rows = {r.identity: r for r in previous.rows}
    new_rows = {r.identity: r for r in rows}
    old_columns = {c.id: c for c in previous.columns}
    new_columns = {c.id: c for c in columns}
    retired_columns = [c for i, c in old_columns.items() if i not in new_columns]
    added_columns = [c for i, c in new_columns.items() if i not in old_columns]
    version_changes = sorted(
        {
            (old.task, old.version, new.version)
            for old in old_columns.values()
            for new in added_columns
            if (old.task, old.metric) == (new.task, new.metric) and old.version != new.version
        },
        key=str,
    )
    changed, new_cells = [], 0
    for identity, row in new_rows.items():
        before = old_rows.get(identity)
        if before is None:
            continue
        for column, cell in row.cells.items():
            if column not in before.cells:
                new_cells += column in old_columns
            elif before.cells[column].value != cell.value:
                changed.append(ChangedValue(row=identity, column=column, old=before.cells[column].value, new=cell.value))
    log = Changelog(
        previous=previous.version,
        level="none",
        new_rows=tuple(i for i in new_rows if i not in old_rows),
        retired_rows=tuple(i for i in old_rows if i not in new_rows),
        new_columns=tuple(c.id for c in added_columns),
        retired_columns=tuple(c.id for c in retired_columns),
        new_cells=new_cells,
        changed_values=tuple(changed),
        version_changes=tuple(VersionChange(task=t, old=o, new=n) for t, o, n in version_changes),
        new_runs=tuple(r.run_id for r in runs if r.run_id not in old_runs),
        retired_runs=tuple(r.run_id for r in previous.runs if r.run_id not in new_runs),
        dirty_runs=dirty,
    )
    if log.version_changes or log.retired_rows or log.retired_columns:
        level = "major"
    elif log.new_columns or log.changed_values:
        level = "minor"
    elif log.new_rows or log.new_cells:
        level = "patch"
    else:
        level = "none"
    return log.model_copy(update={"level": level})

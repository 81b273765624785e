"""What `harness cache` does: the entries of every cache under $HARNESS_CACHE_DIR, their sizes and
ages, a full check of each against its checksum or manifest (a bad entry removed, so it is
recomputed), and removal by kind, variant or age.

Each kind's check is its own module's (the request cache's checksums, the converted weights' and
built folders' manifests, the artifacts' sidecars, the merges' facts, the sensitivity entries'
sha256, the file-hash memos); this module finds the entries and runs the checks in full.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from harness._util.files import file_lock, folder_problem, memo_problem
from harness._util.paths import cache_dir

KINDS = ("requests", "models", "gguf", "artifacts", "merges", "experts", "vlm", "quantize", "file-hashes", "scorers")
"""The caches, each a folder of the cache directory named as the kind."""
_SIDE_FILES = (".json", ".partial")
"""What lies beside an artifact's or a merge's weights: its sidecar or facts, a write in flight."""
_SQLITE_SIDES = ("-wal", "-shm")


@dataclass(frozen=True)
class Entry:
    """One cache entry: the files and folders that make it, and what they hold."""

    kind: str
    name: str
    """The entry's name in its kind's folder (a request cache: the variant's identity)."""
    paths: tuple[Path, ...]
    size: int
    """Bytes, every file counted."""
    modified: float
    """The newest modification time of any of its files (seconds since the epoch)."""
    rows: int | None = None
    """A request cache: the answers stored."""
    stale: int | None = None
    """A request cache: answers made under another answer context than its newest one's (other code,
    library versions, device or batch size), never served to the newest; a file-hash memo: 1 when
    its file has changed or gone."""
    leftover: bool = False
    """A hidden staging folder or temporary file of a build or write that did not finish."""

    def age_days(self, now: float) -> float:
        return max(0.0, (now - self.modified) / 86400)


@dataclass(frozen=True)
class Finding:
    """A bad entry found by `verify`, and what was done about it."""

    entry: Entry
    problem: str
    action: str


def entries(kinds: Iterable[str] = KINDS, root: Path | None = None) -> list[Entry]:
    """Every entry of the caches of `kinds` under `root` (default: the cache directory), in order of
    kind then name."""
    root = cache_dir() if root is None else root
    found: list[Entry] = []
    for kind in kinds:
        folder = root / kind
        if folder.is_dir():
            found += sorted(_entries_of(kind, folder), key=lambda e: e.name)
    return found


def _entries_of(kind: str, folder: Path) -> Iterable[Entry]:
    if kind == "scorers":
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.endswith(".lock")):
            yield _entry(kind, path.relative_to(folder).as_posix(), [path], leftover=path.name.startswith("."))
        return
    groups: dict[str, list[Path]] = {}
    for path in folder.iterdir():
        if path.name.endswith(".lock"):  # a lock is held by name: removing it could let two builders in
            continue
        groups.setdefault(_group(kind, path.name), []).append(path)
    for name, paths in groups.items():
        if kind == "requests" and name.endswith(".sqlite"):
            rows, stale = _request_rows(folder / name)
            yield _entry(kind, name.removesuffix(".sqlite"), paths, rows=rows, stale=stale)
        elif kind == "file-hashes" and not name.startswith("."):
            yield _entry(kind, name, paths, stale=int(memo_problem(paths[0], full=False)[1]))
        else:
            yield _entry(kind, name, paths, leftover=name.startswith("."))


def _group(kind: str, name: str) -> str:
    """The entry a file belongs to: a database with its WAL files, weights with their sidecar."""
    if kind == "requests":
        for side in _SQLITE_SIDES:
            name = name.removesuffix(side)
    elif kind in ("artifacts", "merges") and not name.startswith("."):
        for side in _SIDE_FILES:
            if name.endswith(".safetensors" + side):
                return name.removesuffix(side)
    return name


def _entry(kind: str, name: str, paths: list[Path], **facts: int | bool | None) -> Entry:
    size, modified = 0, 0.0
    for path in paths:
        for file in [path, *path.rglob("*")] if path.is_dir() and not path.is_symlink() else [path]:
            try:
                status = file.lstat()
            except FileNotFoundError:  # removed meanwhile (a write in flight renamed)
                continue
            if not file.name.endswith("-shm"):  # SQLite's shared-memory index: readers touch it too
                modified = max(modified, status.st_mtime)
            if file.is_file():
                size += status.st_size
    return Entry(kind, name, tuple(sorted(paths)), size, modified, **facts)  # type: ignore[arg-type]


def _request_rows(path: Path) -> tuple[int | None, int | None]:
    """(answers stored, answers of older contexts) of a request cache, read without writing it;
    (None, None) for a file that is not a readable database of the cache's layout."""
    from harness.lm._request_cache import SCHEMA

    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            if db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA:
                tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
                rows = db.execute("SELECT COUNT(*) FROM results").fetchone()[0] if "results" in tables else 0
                return rows, rows  # an older layout: never read, every answer stale
            groups = db.execute("SELECT COUNT(*), MAX(created) FROM results GROUP BY context").fetchall()
        finally:
            db.close()
    except sqlite3.DatabaseError:
        return None, None
    rows = sum(count for count, _ in groups)
    newest = max(groups, key=lambda g: g[1])[0] if groups else 0
    return rows, rows - newest


def select(found: list[Entry], kinds: list[str] | None, variant: str | None, older_than: float | None, now: float) -> list[Entry]:
    """The entries of `kinds` (all when None), of request caches whose variant identity starts with
    `variant`, and last written more than `older_than` days ago; every condition given must hold."""
    return [
        e
        for e in found
        if (kinds is None or e.kind in kinds)
        and (variant is None or (e.kind == "requests" and e.name.startswith(variant)))
        and (older_than is None or e.age_days(now) > older_than)
    ]


def totals(found: list[Entry]) -> dict[str, tuple[int, int]]:
    """Per kind (every kind, in KINDS' order): (entries, bytes)."""
    result = {kind: (0, 0) for kind in KINDS}
    for e in found:
        count, size = result[e.kind]
        result[e.kind] = (count + 1, size + e.size)
    return result


_LOCKED = ("models", "artifacts", "merges", "experts", "vlm")
"""The kinds whose builders take a lock (harness._util.files.file_lock) on the entry they write."""


def remove(entry: Entry) -> None:
    """Delete an entry's files, under its lock where a builder takes one (so no build is cut short)."""
    locked = entry.kind in _LOCKED and not entry.leftover
    paths = list(entry.paths)
    if entry.kind == "requests":  # a reader may have made the WAL files since the entry was listed
        paths += [Path(f"{path}{side}") for path in entry.paths for side in _SQLITE_SIDES]
    with file_lock(entry.paths[0].with_name(entry.name)) if locked else contextlib.nullcontext():
        for path in paths:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def verify(found: list[Entry], on_bad: Callable[[Finding], None] | None = None) -> tuple[int, list[Finding]]:
    """Check every entry in full (each file hashed again, each answer's checksum), removing each bad
    one (a request cache loses only its bad answers) so that it is recomputed; (entries checked, the
    bad ones). `on_bad` hears of each as it is found. Leftovers and the kinds without a check (the
    joined GGUF chunks, checked when joined) are not counted."""
    checked, bad = 0, []
    for entry in found:
        if entry.leftover or entry.kind == "gguf":
            continue
        checked += 1
        finding = _check(entry)
        if finding is not None:
            bad.append(finding)
            if on_bad is not None:
                on_bad(finding)
    return checked, bad


def _check(entry: Entry) -> Finding | None:
    if entry.kind == "requests":
        return _check_requests(entry)
    problem = _problem(entry)
    if problem is None:
        return None
    remove(entry)
    return Finding(entry, problem, "removed")


def _problem(entry: Entry) -> str | None:
    path = entry.paths[0]
    if entry.kind == "models":
        from harness.models.loading import float_folder_problem

        return float_folder_problem(path, full=True)
    if entry.kind == "experts":
        from harness.models.experts.build import built_problem

        return built_problem(path, full=True)
    if entry.kind == "vlm":
        from harness.models.vlm.recipe import BUILD_FILE  # the builder itself imports torch

        return folder_problem(path, BUILD_FILE, full=True)
    if entry.kind == "artifacts":
        from harness.wrappers._fitting import artifact_problem

        return artifact_problem(path.with_name(entry.name), full=True)
    if entry.kind == "merges":
        from harness.wrappers.merge import merged_problem

        return merged_problem(path.with_name(entry.name), full=True)
    if entry.kind == "quantize":
        from harness.wrappers._sensitivity import entry_problem

        return entry_problem(path)
    if entry.kind == "file-hashes":
        return memo_problem(path, full=True)[0]
    if entry.kind == "scorers":
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            return f"unreadable ({type(exc).__name__})"
    return None


def _check_requests(entry: Entry) -> Finding | None:
    from harness.lm._request_cache import SCHEMA, RequestCache

    if ".sqlite" in entry.name:  # a file the run that found it unreadable set aside
        remove(entry)
        return Finding(entry, "set aside as unreadable by an earlier run", "removed")
    folder = entry.paths[0].parent
    try:
        db = sqlite3.connect(f"file:{folder / entry.name}.sqlite?mode=ro", uri=True)
        try:
            check = db.execute("PRAGMA quick_check").fetchone()
            layout = db.execute("PRAGMA user_version").fetchone()[0]
        finally:
            db.close()
        if check is None or check[0] != "ok":
            raise sqlite3.DatabaseError(f"integrity check: {check[0] if check else 'no answer'}")
    except sqlite3.DatabaseError as exc:
        remove(entry)
        return Finding(entry, f"not a readable database ({exc})", "removed")
    if layout != SCHEMA:
        return None  # an older layout is never read (its answers count as stale); opening it would empty it
    cache = RequestCache(folder, entry.name, "")  # every row's checksum is checked, whatever its context
    try:
        found = cache.verify()
    finally:
        cache.close()
    if found.bad:
        return Finding(entry, f"{found.bad} of {found.rows} answers failed their checksum", "those answers deleted")
    return None

"""lm-eval's own task index, cached: building it parses some 15,000 YAML files (tens of seconds on a
busy machine), so it is built once per lm-eval installation and kept as JSON under harness's cache.

The file is keyed by lm-eval's version and the folder of its tasks, and verified on read: its first
line holds the key and the sha256 of the second, the entries; a file that fails either is rebuilt. An entry keeps what the index
needs (name, kind, YAML path, tags) and the dataset keys `harness tasks` shows; a task's full config
is read from its YAML when it is loaded, as lm-eval does.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import logging
from pathlib import Path
from typing import Any

from lm_eval.tasks._index import Entry, Kind, TaskIndex

from harness._util.files import atomic_write_bytes, canonical_json, sha256_json
from harness._util.paths import cache_dir

FORMAT = 1
"""Bumped when what an entry keeps changes."""
KEPT = ("dataset_path", "dataset_name", "dataset_kwargs", "custom_dataset", "class")
"""The config keys an entry keeps (harness.tasks._datasets locates the data from them)."""

log = logging.getLogger(__name__)


def builtin_folder() -> Path:
    import lm_eval.tasks

    return Path(lm_eval.tasks.__file__).resolve().parent


def cache_file(folder: Path) -> tuple[Path, dict[str, Any]]:
    """Where the index of lm-eval's tasks in `folder` is cached, and its key."""
    key = {"format": FORMAT, "lm_eval": importlib.metadata.version("lm_eval"), "folder": str(folder)}
    return cache_dir() / "task-index" / f"lm-eval-{sha256_json(key)[:16]}.json", key


@functools.cache
def builtin_entries() -> dict[str, Entry]:
    """lm-eval's built-in tasks, groups and tags by name: from the cache, else built and cached;
    read once per process (lm-eval's tasks do not change under it)."""
    folder = builtin_folder()
    path, key = cache_file(folder)
    entries = _read(path, key)
    if entries is None:
        log.info("indexing lm-eval's tasks in %s (once per lm-eval installation)", folder)
        entries = [_as_json(entry) for entry in TaskIndex.build([folder]).values()]
        body = canonical_json(entries).encode()
        atomic_write_bytes(path, canonical_json({"key": key, "sha256": hashlib.sha256(body).hexdigest()}).encode() + b"\n" + body)
    return {item["name"]: _as_entry(item) for item in entries}


def _read(path: Path, key: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The cached entries, or None when the file is absent, unreadable, for another key, or not
    what its checksum says."""
    try:
        head, _, body = path.read_bytes().partition(b"\n")
        header = json.loads(head)
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        log.warning("rebuilding lm-eval's task index: %s is unreadable (%s)", path, exc)
        return None
    if not isinstance(header, dict) or header.get("key") != key:
        log.warning("rebuilding lm-eval's task index: %s is not an index for %s", path, key)
        return None
    if hashlib.sha256(body).hexdigest() != header.get("sha256"):
        log.warning("rebuilding lm-eval's task index: %s does not match its checksum", path)
        return None
    entries: list[dict[str, Any]] = json.loads(body)
    return entries


def _as_json(entry: Entry) -> dict[str, Any]:
    cfg = {k: entry.cfg[k] for k in KEPT if k in entry.cfg} if entry.cfg is not None else None
    return {
        "name": entry.name,
        "kind": entry.kind.name,
        "yaml_path": str(entry.yaml_path) if entry.yaml_path is not None else None,
        "tags": sorted(entry.tags),
        "cfg": cfg,
    }


def _as_entry(item: dict[str, Any]) -> Entry:
    path = item["yaml_path"]
    return Entry(item["name"], Kind[item["kind"]], Path(path) if path is not None else None, item["cfg"], set(item["tags"]))

"""The request cache: one SQLite file per variant, keyed by (variant, task config, request).

lm-eval's own cache keys on the request alone (lm-eval issue #4063), so a steered model silently
gets its base's answers. Here the variant's identity is both the file and part of every key, and
values are JSON, never pickles. Each chunk of results is committed as soon as it is computed, so
a killed run loses at most the chunk in flight.

Several processes may write one file at once (the workers of `--executor ray` evaluating shards of
one variant): WAL lets readers run beside the writer, and the busy timeout makes a writer wait for
the lock instead of failing with "database is locked".
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from harness._util.files import sha256_json

# How long a writer waits for another process's write lock (a shard's chunk commits in milliseconds).
_BUSY_SECONDS = 120.0


class RequestCache:
    def __init__(self, folder: Path, variant_identity: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.variant_identity = variant_identity
        self.path = folder / f"{variant_identity}.sqlite"
        self._db = sqlite3.connect(self.path, timeout=_BUSY_SECONDS)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        self._db.execute("CREATE TABLE IF NOT EXISTS facts (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
        self._db.execute("CREATE TABLE IF NOT EXISTS shards (name TEXT PRIMARY KEY)")
        self._db.commit()

    def key(self, task_hash: str, request_type: str, arguments: Sequence[Any]) -> str:
        return sha256_json([self.variant_identity, task_hash, request_type, list(arguments)])

    def get_many(self, keys: Sequence[str]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 500):  # SQLite's bound-parameter limit
            part = unique[start : start + 500]
            marks = ",".join("?" * len(part))
            rows = self._db.execute(f"SELECT key, value FROM results WHERE key IN ({marks})", part)
            found.update((k, json.loads(v)) for k, v in rows)
        return found

    def put_many(self, items: Iterable[tuple[str, Any]]) -> None:
        self._db.executemany(
            "INSERT OR REPLACE INTO results (key, value) VALUES (?, ?)",
            [(k, json.dumps(v)) for k, v in items],
        )
        self._db.commit()

    def put_fact(self, name: str, value: Any) -> None:
        """A fact about the variant itself (its cost), so a run answered wholly from the cache,
        which never builds the model, can still report it."""
        self._db.execute("INSERT OR REPLACE INTO facts (name, value) VALUES (?, ?)", (name, json.dumps(value)))
        self._db.commit()

    def get_fact(self, name: str) -> Any:
        row = self._db.execute("SELECT value FROM facts WHERE name = ?", (name,)).fetchone()
        return None if row is None else json.loads(row[0])

    def put_shard(self, name: str, items: Iterable[tuple[str, Any]]) -> None:
        """A finished shard's results and its mark, in one transaction: a shard is marked done
        only when every one of its results is stored."""
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO results (key, value) VALUES (?, ?)",
                [(k, json.dumps(v)) for k, v in items],
            )
            self._db.execute("INSERT OR REPLACE INTO shards (name) VALUES (?)", (name,))

    def has_shard(self, name: str) -> bool:
        return self._db.execute("SELECT 1 FROM shards WHERE name = ?", (name,)).fetchone() is not None

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM results").fetchone()[0]

    def close(self) -> None:
        self._db.close()

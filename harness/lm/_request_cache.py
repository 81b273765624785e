"""The request cache: one SQLite file per variant, keyed by (variant, answer context, task config, request).

lm-eval's own cache keys on the request alone (lm-eval issue #4063), so a steered model silently
gets its base's answers. Here the variant's identity is both the file and part of every key, and so
is the answer context (harness.lm._answer_context: the code on the scoring path, the library
versions, dtype, device class and batch size), so an answer made by other code is never served.
Values are JSON, never pickles, and each row carries a checksum of its key and value, checked on
read: a row that fails it is reported in one line, deleted and recomputed. A file that is not a
readable database is reported, set aside and started afresh. Each chunk of results is committed as
soon as it is computed, so a killed run loses at most the chunk in flight.

Several processes may write one file at once (the workers of `--executor ray` evaluating shards of
one variant): WAL lets readers run beside the writer, and the busy timeout makes a writer wait for
the lock instead of failing with "database is locked".
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness._util.files import sha256_json, sha256_text

# How long a writer waits for another process's write lock (a shard's chunk commits in milliseconds).
_BUSY_SECONDS = 120.0
# The file layout; a file of another version is started afresh (its keys could not match anyway).
SCHEMA = 2
_TABLES = (
    "CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, context TEXT NOT NULL, value TEXT NOT NULL,"
    " checksum TEXT NOT NULL, created REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS facts (context TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL,"
    " checksum TEXT NOT NULL, PRIMARY KEY (context, name))",
    "CREATE TABLE IF NOT EXISTS shards (context TEXT NOT NULL, name TEXT NOT NULL, PRIMARY KEY (context, name))",
)


def _checksum(*parts: str) -> str:
    return sha256_text("\0".join(parts))[:32]


def _say(line: str) -> None:
    logging.getLogger(__name__).warning(line)  # harness's logger: the terminal, also while a run captures stderr


class CorruptCache(Exception):
    """A cache file that is not a readable database of this layout."""


@dataclass(frozen=True)
class CacheCheck:
    """What `RequestCache.verify` found."""

    rows: int
    bad: int
    stale: int
    """Rows made under another answer context (other code, versions, device or batch size)."""


class RequestCache:
    def __init__(self, folder: Path, variant_identity: str, context: str) -> None:
        """The cache of variant `variant_identity` for answers made under `context` (a digest of
        harness.lm._answer_context)."""
        folder.mkdir(parents=True, exist_ok=True)
        self.variant_identity = variant_identity
        self.context = context
        self.path = folder / f"{variant_identity}.sqlite"
        try:
            self._db = _open(self.path)
        except CorruptCache as exc:
            aside = self.path.with_name(f"{self.path.name}.corrupt-{time.time_ns()}")
            for suffix in ("", "-wal", "-shm"):
                part = Path(f"{self.path}{suffix}")
                if part.exists():
                    os.replace(part, Path(f"{aside}{suffix}"))
            _say(f"request cache {self.path} is unreadable ({exc}); set aside as {aside.name}, its answers are recomputed")
            self._db = _open(self.path)

    def key(self, task_hash: str, request_type: str, arguments: Sequence[Any]) -> str:
        return sha256_json([self.variant_identity, self.context, task_hash, request_type, list(arguments)])

    def get_many(self, keys: Sequence[str]) -> dict[str, Any]:
        """The stored answers of `keys` (missing keys absent); a row whose checksum fails is
        reported, deleted and left out, so it is recomputed."""
        found: dict[str, Any] = {}
        bad: list[str] = []
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 500):  # SQLite's bound-parameter limit
            part = unique[start : start + 500]
            marks = ",".join("?" * len(part))
            rows = self._db.execute(
                f"SELECT key, value, checksum FROM results WHERE key IN ({marks}) AND context = ?", [*part, self.context]
            )
            for key, value, checksum in rows:
                answer = _decoded(value) if checksum == _checksum(key, self.context, value) else None
                if answer is None:
                    bad.append(key)
                else:
                    found[key] = answer[0]
        if bad:
            with self._db:
                self._db.executemany("DELETE FROM results WHERE key = ?", [(k,) for k in bad])
            _say(f"request cache {self.path.name}: {len(bad)} answer(s) failed their checksum; they are recomputed")
        return found

    def put_many(self, items: Iterable[tuple[str, Any]]) -> None:
        with self._db:
            self._put(items)

    def _put(self, items: Iterable[tuple[str, Any]]) -> None:
        now = time.time()
        rows = []
        for key, answer in items:
            value = json.dumps(answer, allow_nan=False)
            rows.append((key, self.context, value, _checksum(key, self.context, value), now))
        self._db.executemany("INSERT OR REPLACE INTO results (key, context, value, checksum, created) VALUES (?, ?, ?, ?, ?)", rows)

    def put_fact(self, name: str, value: Any) -> None:
        """A fact about the variant itself (its cost, its wrappers' facts), so a run answered wholly
        from the cache, which never builds the model, can still report it."""
        text = json.dumps(value, allow_nan=False)
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO facts (context, name, value, checksum) VALUES (?, ?, ?, ?)",
                (self.context, name, text, _checksum(self.context, name, text)),
            )

    def get_fact(self, name: str) -> Any:
        row = self._db.execute("SELECT value, checksum FROM facts WHERE context = ? AND name = ?", (self.context, name)).fetchone()
        if row is None:
            return None
        value = _decoded(row[0]) if row[1] == _checksum(self.context, name, row[0]) else None
        if value is None:
            with self._db:
                self._db.execute("DELETE FROM facts WHERE context = ? AND name = ?", (self.context, name))
            _say(f"request cache {self.path.name}: the stored {name} failed its checksum; it is not used")
            return None
        return value[0]

    def put_shard(self, name: str, items: Iterable[tuple[str, Any]]) -> None:
        """A finished shard's results and its mark, in one transaction: a shard is marked done
        only when every one of its results is stored."""
        with self._db:
            self._put(items)
            self._db.execute("INSERT OR REPLACE INTO shards (context, name) VALUES (?, ?)", (self.context, name))

    def has_shard(self, name: str) -> bool:
        row = self._db.execute("SELECT 1 FROM shards WHERE context = ? AND name = ?", (self.context, name)).fetchone()
        return row is not None

    def verify(self) -> CacheCheck:
        """Check every row's checksum (deleting those that fail) and count rows of other contexts."""
        rows = stale = 0
        failed: list[str] = []
        for key, context, value, checksum in self._db.execute("SELECT key, context, value, checksum FROM results"):
            rows += 1
            if checksum != _checksum(key, context, value) or _decoded(value) is None:
                failed.append(key)
            elif context != self.context:
                stale += 1
        if failed:
            with self._db:
                self._db.executemany("DELETE FROM results WHERE key = ?", [(k,) for k in failed])
        return CacheCheck(rows=rows, bad=len(failed), stale=stale)

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM results WHERE context = ?", (self.context,)).fetchone()[0]

    def close(self) -> None:
        self._db.close()


def _decoded(text: str) -> tuple[Any] | None:
    """(value,) of stored JSON text, None when it does not parse (a 1-tuple, since None is an answer)."""
    try:
        return (json.loads(text),)
    except ValueError:
        return None


def _open(path: Path) -> sqlite3.Connection:
    """`path` as a database of this layout (created if new; a file of an older layout started
    afresh); CorruptCache when it is not a readable database."""
    db = sqlite3.connect(path, timeout=_BUSY_SECONDS)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        check = db.execute("PRAGMA quick_check").fetchone()
        if check is None or check[0] != "ok":
            raise CorruptCache(f"integrity check: {check[0] if check else 'no answer'}")
        db.execute("BEGIN IMMEDIATE")  # the write lock first: two processes opening a new file do this in turn
        if db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA:
            for table in ("results", "facts", "shards"):
                db.execute(f"DROP TABLE IF EXISTS {table}")
            db.execute(f"PRAGMA user_version = {SCHEMA}")
        for statement in _TABLES:
            db.execute(statement)
        db.commit()
    except sqlite3.DatabaseError as exc:
        db.close()
        raise CorruptCache(str(exc)) from None
    except CorruptCache:
        db.close()
        raise
    return db

"""Atomic writes and content hashes: every file harness writes appears whole or not at all."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness._util.paths import cache_dir


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: equal values give equal text, hence equal hashes."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha256_json(obj: Any) -> str:
    return sha256_text(canonical_json(obj))


def _sha256_file_uncached(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    """sha256 of a file's bytes, memoised on disk by (real path, size, mtime) for large weights."""
    path = Path(path).resolve()
    stat = path.stat()
    if stat.st_size < (8 << 20):
        return _sha256_file_uncached(path)
    memo = cache_dir() / "file-hashes" / sha256_text(f"{path}|{stat.st_size}|{stat.st_mtime_ns}")
    if memo.exists():
        return memo.read_text().strip()
    value = _sha256_file_uncached(path)
    atomic_write_text(memo, value + "\n")
    return value


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file in the same folder and a rename."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _new_file(path.parent, f".{path.name}.", ".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _new_file(folder: Path, prefix: str, suffix: str) -> tuple[int, Path]:
    """A new file of a name no one else holds, opened for writing with the usual permissions
    (0666 less the umask, as open() gives; tempfile.mkstemp's are 0600)."""
    while True:
        candidate = folder / f"{prefix}{secrets.token_hex(8)}{suffix}"
        try:
            return os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), candidate
        except FileExistsError:
            continue


def build_dir(final: Path, write: Callable[[Path], object]) -> None:
    """Run `write` on a fresh hidden staging folder beside `final`, then publish it in one rename:
    a failed or killed build never leaves a folder under `final`'s name."""
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}."))
    try:
        write(staging)
        publish_dir(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def publish_new_dir(staging: Path, final: Path) -> bool:
    """Move a fully written staging folder to `final` in one rename, unless `final` exists (then
    False: nothing is replaced, so two processes never clobber each other's folder)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():
        return False
    try:
        os.rename(staging, final)  # on Linux, fails on an existing non-empty folder: the race is safe too
    except OSError as exc:
        if final.exists():
            return False
        raise exc
    return True


def publish_dir(staging: Path, final: Path) -> None:
    """Move a fully written staging folder to its final name in one rename."""
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():
        shutil.rmtree(final)
    os.replace(staging, final)

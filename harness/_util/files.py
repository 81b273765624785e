"""Atomic writes and content hashes: every file harness writes appears whole or not at all; cached
folders that prove themselves against a manifest, built once however many processes ask at once."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from harness._util.paths import cache_dir

MEMO_BYTES = 8 << 20
"""Files at least this large have their sha256 memoised on disk (weights); smaller ones are hashed each time."""
_SHA256 = re.compile(r"[0-9a-f]{64}")


def say(line: str) -> None:
    """One line on stderr: how a cache reports an entry it found wrong (and then recomputes)."""
    print(f"harness: {line}", file=sys.stderr, flush=True)


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: equal values give equal text, hence equal hashes."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha256_json(obj: Any) -> str:
    return sha256_text(canonical_json(obj))


def fresh_sha256(path: Path) -> str:
    """sha256 of a file's bytes, read now (no memo)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def stamp(path: Path) -> dict[str, int]:
    """What changes when a file is written, cheaply read: size, mtime, ctime and inode. Writing a
    file's bytes and putting its mtime back (os.utime) still moves its ctime, which no user call
    can set; a copy or a restore gets a new inode."""
    status = path.stat()
    return {"size": status.st_size, "mtime_ns": status.st_mtime_ns, "ctime_ns": status.st_ctime_ns, "inode": status.st_ino}


def memo_path(path: Path, file_stamp: dict[str, int]) -> Path:
    """The memo of the sha256 of `path` (a resolved path) as it is when its stamp is `file_stamp`."""
    return cache_dir() / "file-hashes" / sha256_json({"path": str(path), **file_stamp})


def sha256_file(path: Path) -> str:
    """sha256 of a file's bytes, memoised on disk for large files (weights) by the real path and the
    file's stamp (size, mtime, ctime, inode): a file written since, even with its mtime put back,
    is hashed again. A memo that does not hold a digest of this very file is reported in one line
    and recomputed."""
    path = Path(path).resolve()
    file_stamp = stamp(path)
    if file_stamp["size"] < MEMO_BYTES:
        return fresh_sha256(path)
    memo = memo_path(path, file_stamp)
    try:
        text = memo.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = None
    except (OSError, UnicodeDecodeError) as exc:
        text = f"unreadable: {exc}"
    if text is not None:
        if (known := _memo_digest(_parsed(text), path, file_stamp)) is not None:
            return known
        say(f"file-hash memo {memo.name[:16]} for {path.name} is garbled; the file is hashed again")
    value = fresh_sha256(path)
    content = {"path": str(path), "stamp": file_stamp, "sha256": value, "check": _memo_check(path, file_stamp, value)}
    atomic_write_text(memo, json.dumps(content) + "\n")
    return value


def _memo_check(path: Path, file_stamp: dict[str, int], digest: str) -> str:
    """A checksum over what a memo says, so a flipped or edited digest shows."""
    return sha256_json([str(path), file_stamp, digest])[:16]


def _parsed(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _memo_digest(memo: Any, path: Path, file_stamp: dict[str, int]) -> str | None:
    """The digest a memo holds, if it is a memo of `path` under this stamp with a sha256 in it that
    its checksum confirms."""
    if not isinstance(memo, dict) or memo.get("path") != str(path) or memo.get("stamp") != file_stamp:
        return None
    digest = memo.get("sha256")
    if not isinstance(digest, str) or not _SHA256.fullmatch(digest) or memo.get("check") != _memo_check(path, file_stamp, digest):
        return None
    return digest


def memo_problem(memo: Path, full: bool = True) -> tuple[str | None, bool]:
    """(why the memo file `memo` is wrong, or None; whether it is stale: its file changed or went, so
    no lookup reaches it). With `full`, the file is hashed again and the memo compared with it."""
    try:
        text = memo.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return f"unreadable ({type(exc).__name__})", False
    if _SHA256.fullmatch(text.strip()):
        return None, True  # an older harness's memo (a bare digest, named by path, size and mtime): no lookup reaches it
    try:
        content = json.loads(text)
        path, file_stamp = Path(content["path"]), content["stamp"]
        named = memo_path(path, file_stamp).name
    except (ValueError, KeyError, TypeError, AttributeError):
        return "garbled (not a memo of this harness)", False
    if memo.name != named or _memo_digest(content, path, file_stamp) is None:
        return "garbled (its digest, path or stamp does not fit its name)", False
    try:
        if stamp(path) != file_stamp:
            return None, True
    except OSError:
        return None, True
    if full and fresh_sha256(path) != content["sha256"]:
        return f"says {content['sha256'][:12]} for {path}, whose sha256 differs", False
    return None, False


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


@contextlib.contextmanager
def file_lock(target: Path) -> Iterator[None]:
    """Hold the exclusive lock of `target` (flock on `<target>.lock` beside it) for the block: the
    one way two processes that would write one cache entry take turns. The lock file stays (removing
    it would let a third process lock another file of the same name)."""
    lock = target.with_name(f"{target.name}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


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


def build_verified(final: Path, write: Callable[[Path], object], problem: Callable[[Path], str | None], what: str) -> bool:
    """`final` as `write` makes it, built once however many processes ask at once. Unless it is there
    and proves itself (`problem(final)` is None), the lock of `final` is taken and the check made
    again (another process may have built it meanwhile: then it is used); still wanting, it is built
    aside and published in one rename. A folder that fails its check is reported in one line and
    rebuilt, never used. True when this call built it."""
    if final.exists() and problem(final) is None:
        return False
    with file_lock(final):
        if final.exists():
            reason = problem(final)
            if reason is None:
                return False
            say(f"{what} {final.name}: {reason}; it is rebuilt")
        build_dir(final, write)
    return True


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
    """Move a fully written staging folder to its final name, replacing what is there: the old folder
    is renamed aside first and removed after, so `final` is missing only between two renames, and a
    reader never sees a half-removed folder under its name."""
    final.parent.mkdir(parents=True, exist_ok=True)
    old = final.with_name(f".{final.name}.old-{secrets.token_hex(4)}") if final.exists() else None
    if old is not None:
        os.rename(final, old)
    os.replace(staging, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# --- manifests: folders that prove themselves ------------------------------------------------------


def _folder_files(folder: Path, skip: str) -> dict[str, Path]:
    return {p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*")) if p.is_file() and p.name != skip}


def folder_manifest(folder: Path, skip: str) -> dict[str, dict[str, Any]]:
    """Every file of `folder` but `skip` (the facts file that holds the manifest): its sha256 and stamp."""
    return {name: {"sha256": fresh_sha256(path), **stamp(path)} for name, path in _folder_files(folder, skip).items()}


def write_facts(folder: Path, name: str, facts: dict[str, Any], key: dict[str, Any]) -> dict[str, Any]:
    """Write `folder/name` (JSON), the folder's last file: `facts`, the `key` that names the folder
    (key_name), and the manifest of every other file. Returns what was written."""
    written = {**facts, "key": key, "manifest": folder_manifest(folder, name)}
    atomic_write_text(folder / name, json.dumps(written, indent=2, ensure_ascii=False) + "\n")
    return written


def key_name(key: dict[str, Any]) -> str:
    """The folder name of a cache key: its `name` and a prefix of the key's sha256."""
    return f"{key['name']}-{sha256_json(key)[:16]}"


def folder_problem(folder: Path, name: str, full: bool = False) -> str | None:
    """None when `folder` is whole: its facts file `name` (write_facts) holds the key that names the
    folder and a manifest of its other files, none missing or added. Each file's stamp is checked
    against the manifest (cheap); a file whose stamp differs, or every file with `full`, is hashed
    and compared. A file found equal under a new stamp (a copied or restored cache) has its stamp
    brought up to date, so the next check is cheap again. Else one phrase saying what is wrong."""
    try:
        facts = json.loads((folder / name).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return f"it has no {name}"
    except (OSError, ValueError) as exc:
        return f"its {name} is unreadable ({type(exc).__name__})"
    manifest, key = (facts.get("manifest"), facts.get("key")) if isinstance(facts, dict) else (None, None)
    if not isinstance(manifest, dict) or not all(isinstance(v, dict) for v in manifest.values()):
        return f"its {name} has no manifest (made by an older harness)"
    if not isinstance(key, dict) or "name" not in key or key_name(key) != folder.name:
        return f"its {name} names another cache key"
    present = _folder_files(folder, name)
    if missing := sorted(manifest.keys() - present.keys()):
        return f"{missing[0]} is missing"
    if added := sorted(present.keys() - manifest.keys()):
        return f"{added[0]} is not in its manifest"
    refreshed: dict[str, dict[str, Any]] = {}
    for file, path in present.items():
        recorded, now = manifest[file], stamp(path)
        if not full and all(recorded.get(k) == v for k, v in now.items()):
            refreshed[file] = recorded
            continue
        if now["size"] != recorded.get("size"):
            return f"{file} has {now['size']} bytes, its manifest {recorded.get('size')}"
        if fresh_sha256(path) != recorded.get("sha256"):
            return f"{file} differs from its manifest (sha256)"
        refreshed[file] = {"sha256": recorded["sha256"], **now}
    if refreshed != manifest:
        with contextlib.suppress(OSError):  # a read-only cache: the next check hashes again
            atomic_write_text(folder / name, json.dumps({**facts, "manifest": refreshed}, indent=2, ensure_ascii=False) + "\n")
    return None

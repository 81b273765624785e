"""Caches that prove themselves: the file-hash memo keyed by the file's whole stamp and checked, folders
checked against their manifest, and a folder built once however many processes ask at once."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import time
from pathlib import Path

import pytest

from harness._util.files import (
    MEMO_BYTES,
    build_verified,
    folder_problem,
    key_name,
    memo_problem,
    publish_dir,
    sha256_file,
    stamp,
    write_facts,
)

KEY = {"name": "thing", "made_from": "abc"}


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(folder))
    return folder


def _noise(path: Path, offset: int = 100) -> None:
    """Write other bytes into `path` in place, its size kept and its mtime put back (the issue's attack)."""
    before = path.stat()
    with open(path, "r+b") as f:
        f.seek(offset)
        old = f.read(8)
        f.seek(offset)
        f.write(bytes(b ^ 0xFF for b in old))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)


def _weights(path: Path) -> Path:
    path.write_bytes(os.urandom(MEMO_BYTES + 1))
    return path


def test_a_file_written_with_its_mtime_put_back_is_hashed_again(cache, tmp_path):
    weights = _weights(tmp_path / "w.bin")
    first = sha256_file(weights)
    assert len(list((cache / "file-hashes").iterdir())) == 1
    _noise(weights)
    assert sha256_file(weights) != first  # the ctime moved: the memo of the old bytes is not used


@pytest.mark.parametrize("garble", ["junk\n", "flip"])
def test_a_garbled_memo_is_reported_in_one_line_and_recomputed(cache, tmp_path, capsys, garble):
    weights = _weights(tmp_path / "w.bin")
    right = sha256_file(weights)
    (memo,) = (cache / "file-hashes").iterdir()
    if garble == "flip":  # a plausible digest, one digit changed
        content = json.loads(memo.read_text())
        content["sha256"] = ("0" if right[0] != "0" else "1") + right[1:]
        garble = json.dumps(content)
    memo.write_text(garble)
    capsys.readouterr()
    assert sha256_file(weights) == right
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "memo" in err and "garbled" in err, err
    assert sha256_file(weights) == right and capsys.readouterr().err == ""  # rewritten whole
    assert memo_problem(memo) == (None, False)


def test_memo_problem_finds_a_wrong_digest_and_a_stale_memo(cache, tmp_path):
    weights = _weights(tmp_path / "w.bin")
    sha256_file(weights)
    (memo,) = (cache / "file-hashes").iterdir()
    assert memo_problem(memo) == (None, False)
    memo.write_text("0" * 64 + "\n")  # an older harness's memo, named otherwise: never looked up
    assert memo_problem(memo) == (None, True)
    memo.write_text('{"sha256": "' + "0" * 64 + '"}')
    assert "garbled" in (memo_problem(memo)[0] or "")
    memo.unlink()
    sha256_file(weights)
    _noise(weights)
    assert memo_problem(memo) == (None, True)  # its file changed: no lookup reaches it


def _folder(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "weights.bin").write_bytes(os.urandom(4096))
    (path / "config.json").write_text("{}")
    write_facts(path, "facts.json", {"made": "here"}, KEY)
    return path


def test_a_folder_proves_itself_against_its_manifest(tmp_path):
    folder = _folder(tmp_path / key_name(KEY))
    assert folder_problem(folder, "facts.json") is None
    assert folder_problem(folder, "facts.json", full=True) is None
    facts = json.loads((folder / "facts.json").read_text())
    assert facts["made"] == "here" and facts["key"] == KEY and set(facts["manifest"]) == {"weights.bin", "config.json"}

    _noise(folder / "weights.bin")
    assert folder_problem(folder, "facts.json") == "weights.bin differs from its manifest (sha256)"


def test_a_copied_folder_is_hashed_once_and_its_stamps_brought_up_to_date(tmp_path):
    folder = _folder(tmp_path / "made" / key_name(KEY))
    copy = tmp_path / "copied" / key_name(KEY)
    shutil.copytree(folder, copy)
    before = json.loads((copy / "facts.json").read_text())["manifest"]["weights.bin"]
    assert stamp(copy / "weights.bin") != {k: before[k] for k in ("size", "mtime_ns", "ctime_ns", "inode")}  # a new inode
    assert folder_problem(copy, "facts.json") is None
    recorded = json.loads((copy / "facts.json").read_text())["manifest"]["weights.bin"]
    assert {k: recorded[k] for k in ("size", "mtime_ns", "ctime_ns", "inode")} == stamp(copy / "weights.bin")


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda f: (f / "config.json").unlink(), "config.json is missing"),
        (lambda f: (f / "extra.safetensors").write_bytes(b"x"), "extra.safetensors is not in its manifest"),
        (lambda f: (f / "weights.bin").write_bytes(b"short"), "weights.bin has 5 bytes, its manifest 4096"),
        (lambda f: (f / "facts.json").unlink(), "it has no facts.json"),
        (lambda f: (f / "facts.json").write_text("{"), "its facts.json is unreadable (JSONDecodeError)"),
        (lambda f: (f / "facts.json").write_text('{"key": {}}'), "its facts.json has no manifest (made by an older harness)"),
        (lambda f: f.rename(f.with_name("thing-0123456789abcdef")), "its facts.json names another cache key"),
    ],
)
def test_what_a_folder_check_finds(tmp_path, change, problem):
    folder = _folder(tmp_path / key_name(KEY))
    change(folder)
    if not folder.exists():
        folder = folder.with_name("thing-0123456789abcdef")
    assert folder_problem(folder, "facts.json") == problem


def test_publish_dir_replaces_a_folder(tmp_path):
    final = tmp_path / "final"
    final.mkdir()
    (final / "old").write_text("old")
    staging = tmp_path / ".staging"
    staging.mkdir()
    (staging / "new").write_text("new")
    publish_dir(staging, final)
    assert [p.name for p in final.iterdir()] == ["new"] and sorted(p.name for p in tmp_path.iterdir()) == ["final"]


def _slow_build(final: str, calls: str, seconds: float = 0.0) -> bool:
    """Build `final`, taking `seconds`, appending a line to `calls` each time the build runs."""

    def write(staging: Path) -> None:
        with open(calls, "a") as f:
            f.write("built\n")
        time.sleep(seconds)
        (staging / "weights.bin").write_bytes(b"w" * 100)
        write_facts(staging, "facts.json", {}, KEY)

    return build_verified(Path(final), write, lambda f: folder_problem(f, "facts.json"), "thing")


@pytest.mark.slow  # two new processes
def test_two_processes_building_one_folder_build_it_once(tmp_path):
    final, calls = tmp_path / key_name(KEY), tmp_path / "calls.txt"
    context = multiprocessing.get_context("spawn")
    with context.Pool(2) as pool:
        built = pool.starmap(_slow_build, [(str(final), str(calls), 1.5)] * 2)
    assert calls.read_text() == "built\n"
    assert sorted(built) == [False, True]
    assert folder_problem(final, "facts.json") is None
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["calls.txt", final.name, f"{final.name}.lock"])


def test_a_folder_that_fails_its_check_is_reported_and_rebuilt(tmp_path, capsys):
    final, calls = tmp_path / key_name(KEY), tmp_path / "calls.txt"
    assert _slow_build(str(final), str(calls)) is True
    assert _slow_build(str(final), str(calls)) is False
    _noise(final / "weights.bin", offset=10)
    capsys.readouterr()
    assert _slow_build(str(final), str(calls)) is True
    err = capsys.readouterr().err
    assert err == f"harness: thing {final.name}: weights.bin differs from its manifest (sha256); it is rebuilt\n"
    assert calls.read_text() == "built\nbuilt\n" and (final / "weights.bin").read_bytes() == b"w" * 100

"""The caches as `harness cache` sees them: every kind's entries with their size, age and answers; a
full check that finds an edited entry of each kind and removes it (a request cache: its bad answers);
selection by kind, variant and age."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path

import pytest

from harness.engine._cache import KINDS, entries, remove, select, totals, verify
from tests.helpers import VARIANT_A, VARIANT_B, fill_cache


@pytest.fixture
def cache(tmp_path, monkeypatch) -> tuple[Path, dict[str, Path]]:
    root = tmp_path / "cache"
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(root))
    return root, fill_cache(root)


def _noise(path: Path) -> None:
    """Other bytes in the middle of `path`, its size kept and its mtime put back."""
    before = path.stat()
    with open(path, "r+b") as f:
        f.seek(before.st_size // 2)
        f.write(b"\xee" * 8)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def test_every_kind_is_listed_with_its_size_and_answers(cache):
    _, made = cache
    found = entries()
    assert {e.kind for e in found} == set(KINDS)
    by_kind = {e.kind: e for e in found if e.name != VARIANT_B}
    requests = by_kind["requests"]
    assert requests.name == VARIANT_A and (requests.rows, requests.stale) == (3, 2)
    assert {e.name: (e.rows, e.stale) for e in found if e.kind == "requests"}[VARIANT_B] == (0, 0)
    assert by_kind["models"].name == made["models"].name and by_kind["models"].size == sum(
        p.stat().st_size for p in made["models"].iterdir()
    )
    assert by_kind["artifacts"].name == made["artifacts"].name and len(by_kind["artifacts"].paths) == 2  # the weights and the sidecar
    assert by_kind["scorers"].name == f"keras-tokenizers/{made['scorers'].name}"
    assert by_kind["file-hashes"].stale == 0
    assert all(e.age_days(time.time()) < 0.01 for e in found)
    sums = totals(found)
    assert sums["requests"][0] == 2 and sums["experts"] == (1, by_kind["experts"].size)
    assert not any(p.name.endswith(".lock") for e in found for p in e.paths)


def test_a_whole_cache_verifies(cache):
    checked, bad = verify(entries())
    assert (checked, bad) == (len(KINDS) - 1 + 1, [])  # every kind but gguf, two request caches


def _edit_answer(database: Path) -> None:
    db = sqlite3.connect(database)
    with db:
        db.execute("UPDATE results SET value = '[-0.1, true]' WHERE key = 'k3'")  # a plausible answer
    db.close()


EDITS = {
    "models": lambda made: _noise(made["models"] / "model.safetensors"),
    "experts": lambda made: _noise(made["experts"] / "model.safetensors"),
    "vlm": lambda made: (made["vlm"] / "config.json").write_text("[]"),
    "artifacts": lambda made: _noise(made["artifacts"]),
    "merges": lambda made: _noise(made["merges"]),
    "quantize": lambda made: made["quantize"].write_text(made["quantize"].read_text().replace("0.5", "0.25")),
    "file-hashes": lambda made: made["file-hashes"].write_text(made["file-hashes"].read_text().replace('"sha256": "', '"sha256": "f')),
    "scorers": lambda made: made["scorers"].write_text('{"word_index": '),
    "requests": lambda made: _edit_answer(made["requests"]),
}


@pytest.mark.parametrize("kind", sorted(EDITS))
def test_an_edited_entry_of_each_kind_is_found_and_removed(cache, kind):
    _, made = cache
    EDITS[kind](made)
    heard = []
    _, bad = verify(entries(), heard.append)
    assert heard == bad and len(bad) == 1 and bad[0].entry.kind == kind, bad
    assert "\n" not in bad[0].problem
    if kind == "requests":
        assert bad[0].problem == "1 of 3 answers failed their checksum" and bad[0].action == "those answers deleted"
        assert {e.name: e.rows for e in entries(["requests"])}[VARIANT_A] == 2  # the others stay
    else:
        assert bad[0].action == "removed" and not made[kind].exists()
    assert verify(entries())[1] == []


def test_an_unreadable_request_cache_and_one_set_aside_are_removed(cache):
    root, made = cache
    made["requests"].write_bytes(b"not a database" * 100)
    for side in ("-wal", "-shm"):
        Path(f"{made['requests']}{side}").unlink(missing_ok=True)
    aside = root / "requests" / f"{VARIANT_B}.sqlite.corrupt-1"
    aside.write_bytes(b"junk")
    found = entries(["requests"])
    assert {e.name: e.rows for e in found} == {VARIANT_A: None, VARIANT_B: 0, aside.name: None}
    _, bad = verify(found)
    assert sorted(f.entry.name for f in bad) == sorted([VARIANT_A, aside.name])
    assert {f.entry.name: f.problem for f in bad}[aside.name] == "set aside as unreadable by an earlier run"
    assert not made["requests"].exists() and not aside.exists()
    assert [e.name for e in entries(["requests"])] == [VARIANT_B]


def test_an_older_layout_is_stale_not_bad(cache):
    _, made = cache
    db = sqlite3.connect(made["requests"])
    db.execute("PRAGMA user_version = 1")
    db.close()
    (entry,) = [e for e in entries(["requests"]) if e.name == VARIANT_A]
    assert (entry.rows, entry.stale) == (3, 3)
    assert verify([entry])[1] == [] and made["requests"].exists()


def test_selection_by_kind_variant_and_age(cache):
    root, made = cache
    ten_days = time.time() - 10 * 86400
    for path in made["experts"].rglob("*"):
        os.utime(path, (ten_days, ten_days))
    os.utime(made["experts"], (ten_days, ten_days))
    found, now = entries(), time.time()
    assert [e.kind for e in select(found, None, None, 5, now)] == ["experts"]
    assert [e.name for e in select(found, None, "aaa", None, now)] == [VARIANT_A]
    assert {e.kind for e in select(found, ["models", "vlm"], None, None, now)} == {"models", "vlm"}
    assert select(found, ["models"], "aaa", None, now) == []
    for entry in select(found, ["experts", "requests"], None, None, now):
        remove(entry)
    assert not made["experts"].exists() and not (root / "requests" / f"{VARIANT_B}.sqlite").exists()
    assert not any(p.name.startswith(VARIANT_A) for p in (root / "requests").iterdir())
    assert {e.kind for e in entries()} == set(KINDS) - {"experts", "requests"}


def test_a_leftover_staging_folder_is_listed_and_cleared_but_not_verified(cache):
    root, _ = cache
    staging = root / "models" / ".gguf-0123.abcd"
    staging.mkdir()
    (staging / "model.safetensors").write_bytes(b"half")
    (leftover,) = [e for e in entries(["models"]) if e.leftover]
    assert leftover.name == staging.name and leftover.size == 4
    checked, bad = verify([leftover])
    assert (checked, bad) == (0, [])
    remove(leftover)
    assert not staging.exists()


def test_the_file_hash_memo_of_a_changed_file_is_stale(cache):
    _, made = cache
    memo = json.loads(made["file-hashes"].read_text())
    _noise(Path(memo["path"]))
    (entry,) = entries(["file-hashes"])
    assert entry.stale == 1 and verify([entry])[1] == []

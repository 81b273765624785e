"""`harness cache list | size | verify | clear` on a cache with an entry of every kind (bad input is in
cases/bad_inputs/cache.json)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from harness.cli._main import main
from harness.engine._cache import KINDS
from tests.helpers import VARIANT_A, VARIANT_B, fill_cache


@pytest.fixture
def cache(tmp_path, monkeypatch) -> tuple[Path, dict[str, Path]]:
    root = tmp_path / "cache"
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(root))
    return root, fill_cache(root)


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_list_shows_every_entry_with_its_answers(cache, capsys):
    status, out, err = _run(capsys, "cache", "list")
    assert status == 0 and err == ""
    rows = {line.split()[1]: line.split() for line in out.splitlines()[2:]}
    assert rows[VARIANT_A][0] == "requests" and rows[VARIANT_A][-2:] == ["3", "2"]  # 3 answers, 2 of an older context
    assert {row[0] for row in rows.values()} == set(KINDS)
    status, out, _ = _run(capsys, "cache", "list", "--variant", "aa", "--output", "json")
    (listed,) = json.loads(out)
    assert listed["name"] == VARIANT_A and (listed["rows"], listed["stale"]) == (3, 2) and listed["bytes"] > 0


def test_size_totals_each_kind(cache, capsys):
    status, out, _ = _run(capsys, "cache", "size", "--output", "json")
    sizes = json.loads(out)
    assert status == 0 and set(sizes) == set(KINDS) and sizes["requests"]["entries"] == 2
    assert all(sizes[kind]["entries"] == 1 for kind in KINDS if kind != "requests")
    _, out, _ = _run(capsys, "cache", "size", "--kind", "models")
    assert [line.split()[0] for line in out.splitlines()[2:]] == ["models", "total"]


def test_verify_reports_each_bad_entry_in_one_line_and_exits_1(cache, capsys):
    _, made = cache
    status, out, _ = _run(capsys, "cache", "verify")
    assert (status, out) == (0, f"checked {len(KINDS)} entries: 0 bad\n")  # every kind but gguf, two request caches
    weights = made["models"] / "model.safetensors"
    before = weights.stat()
    with open(weights, "r+b") as f:  # noise, the size kept and the mtime put back
        f.seek(100)
        f.write(b"\x00\x01\x02\x03")
    os.utime(weights, ns=(before.st_atime_ns, before.st_mtime_ns))
    status, out, err = _run(capsys, "cache", "verify")
    assert status == 1 and err == ""
    assert out.splitlines() == [
        f"bad models {made['models'].name}: model.safetensors differs from its manifest (sha256); removed",
        f"checked {len(KINDS)} entries: 1 bad",
    ]
    assert not made["models"].exists()
    status, out, _ = _run(capsys, "cache", "verify", "--output", "json")
    assert status == 0 and json.loads(out) == {"checked": len(KINDS) - 1, "bad": []}


def test_clear_removes_what_is_selected_and_says_what(cache, capsys):
    root, made = cache
    status, out, _ = _run(capsys, "cache", "clear", "--variant", "aaa")
    assert status == 0 and out.splitlines()[0].startswith(f"removed requests {VARIANT_A} (")
    assert not any(p.name.startswith(VARIANT_A) for p in (root / "requests").iterdir())

    ten_days = time.time() - 10 * 86400
    os.utime(made["quantize"], (ten_days, ten_days))
    status, out, _ = _run(capsys, "cache", "clear", "--older-than", "5", "--output", "json")
    assert status == 0 and [(r["kind"], r["name"]) for r in json.loads(out)["removed"]] == [("quantize", made["quantize"].name)]

    status, out, _ = _run(capsys, "cache", "clear", "--kind", "experts", "--kind", "vlm")
    assert status == 0 and out.splitlines()[-1].startswith("removed 2 entries, ")
    assert not made["experts"].exists() and not made["vlm"].exists()

    status, out, _ = _run(capsys, "cache", "clear", "--all")
    assert status == 0 and f"removed requests {VARIANT_B} (" in out
    _, out, _ = _run(capsys, "cache", "list")
    assert out == "no cache entries\n"
    status, out, _ = _run(capsys, "cache", "clear", "--all")
    assert (status, out) == (0, "nothing to remove\n")

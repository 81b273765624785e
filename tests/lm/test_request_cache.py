import sqlite3

import pytest

from harness._util import log
from harness.lm._request_cache import SCHEMA, RequestCache


@pytest.fixture
def command_line():
    """Warnings printed as the `harness` command prints them (its logger's line on stderr)."""
    with log.configured(log.NORMAL):
        yield


def test_values_round_trip_as_json_and_survive_reopening(tmp_path):
    cache = RequestCache(tmp_path, "variant-a", "context")
    key = cache.key("task-hash", "loglikelihood", ("Question: 1+1?\nAnswer:", " 2"))
    cache.put_many([(key, [-0.25, True])])
    cache.close()
    reopened = RequestCache(tmp_path, "variant-a", "context")
    assert reopened.get_many([key, "absent"]) == {key: [-0.25, True]}
    assert len(reopened) == 1


def test_keys_depend_on_variant_context_task_kind_and_arguments(tmp_path):
    a, b = RequestCache(tmp_path, "variant-a", "context"), RequestCache(tmp_path, "variant-b", "context")
    other_code = RequestCache(tmp_path / "other", "variant-a", "other context")
    args = ("context", " continuation")
    keys = {
        a.key("t1", "loglikelihood", args),
        b.key("t1", "loglikelihood", args),
        other_code.key("t1", "loglikelihood", args),
        a.key("t2", "loglikelihood", args),
        a.key("t1", "generate_until", args),
        a.key("t1", "loglikelihood", ("context", " other")),
    }
    assert len(keys) == 6
    assert a.path != b.path


def test_answers_and_facts_of_another_context_are_not_served(tmp_path):
    old = RequestCache(tmp_path, "variant-a", "old code")
    key = old.key("t", "loglikelihood", ("x", " y"))
    old.put_many([(key, [-1.0, False])])
    old.put_fact("applied", [{"name": "quantize", "info": {"bits": 8}}])
    old.close()
    new = RequestCache(tmp_path, "variant-a", "new code")
    assert new.get_many([key]) == {}
    assert new.get_fact("applied") is None
    assert len(new) == 0
    assert new.verify().stale == 1


def test_an_edited_answer_fails_its_checksum_and_is_dropped_in_one_line(tmp_path, capsys, command_line):
    cache = RequestCache(tmp_path, "variant-a", "context")
    keys = [cache.key("t", "loglikelihood", ("q", f" {i}")) for i in range(3)]
    cache.put_many([(k, [-17.45, True]) for k in keys])
    cache.close()
    with sqlite3.connect(tmp_path / "variant-a.sqlite") as db:  # a plausible value, edited by hand
        db.execute("UPDATE results SET value = ? WHERE key = ?", ("[-1.0, true]", keys[1]))
    cache = RequestCache(tmp_path, "variant-a", "context")
    assert cache.get_many(keys) == {keys[0]: [-17.45, True], keys[2]: [-17.45, True]}
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["harness: request cache variant-a.sqlite: 1 answer(s) failed their checksum; they are recomputed"]
    assert len(cache) == 2  # the bad row is gone, so it is computed and stored again


def test_an_edited_fact_is_not_used(tmp_path, capsys, command_line):
    cache = RequestCache(tmp_path, "variant-a", "context")
    cache.put_fact("cost", {"params": 10})
    cache.close()
    with sqlite3.connect(tmp_path / "variant-a.sqlite") as db:
        db.execute("UPDATE facts SET value = ?", ('{"params": 11}',))
    assert RequestCache(tmp_path, "variant-a", "context").get_fact("cost") is None
    assert "the stored cost failed its checksum" in capsys.readouterr().err


def test_a_file_that_is_no_database_is_set_aside_and_started_afresh(tmp_path, capsys, command_line):
    path = tmp_path / "variant-a.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    cache = RequestCache(tmp_path, "variant-a", "context")
    key = cache.key("t", "loglikelihood", ("q", " a"))
    cache.put_many([(key, [-2.0, False])])
    assert cache.get_many([key]) == {key: [-2.0, False]}
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is unreadable" in err[0] and "its answers are recomputed" in err[0]
    assert len(list(tmp_path.glob("variant-a.sqlite.corrupt-*"))) == 1


def test_a_truncated_database_is_detected(tmp_path, capsys, command_line):
    cache = RequestCache(tmp_path, "variant-a", "context")
    cache.put_many([(cache.key("t", "loglikelihood", ("q", f" {i}")), [float(-i), False]) for i in range(3000)])
    cache._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    cache.close()
    path = tmp_path / "variant-a.sqlite"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    cache = RequestCache(tmp_path, "variant-a", "context")
    assert len(cache) == 0
    assert "is unreadable" in capsys.readouterr().err


def test_a_file_of_the_older_layout_is_started_afresh(tmp_path):
    with sqlite3.connect(tmp_path / "variant-a.sqlite") as db:  # harness before answer contexts and checksums
        db.execute("CREATE TABLE results (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.execute("INSERT INTO results VALUES ('k', '[-1.0, true]')")
    cache = RequestCache(tmp_path, "variant-a", "context")
    assert cache.get_many(["k"]) == {} and len(cache) == 0
    assert cache._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA


def test_verify_counts_and_removes_bad_rows(tmp_path):
    cache = RequestCache(tmp_path, "variant-a", "context")
    keys = [cache.key("t", "loglikelihood", ("q", f" {i}")) for i in range(4)]
    cache.put_many([(k, [-1.0, True]) for k in keys])
    cache._db.execute("UPDATE results SET value = 'not json' WHERE key = ?", (keys[0],))
    cache._db.commit()
    check = cache.verify()
    assert (check.rows, check.bad, check.stale) == (4, 1, 0)
    assert cache.verify().bad == 0 and len(cache) == 3


def _write_concurrently(folder, worker: int) -> None:
    cache = RequestCache(folder, "variant-a", "context")
    for chunk in range(40):
        items = [(cache.key("t", "loglikelihood", (worker, chunk, i)), [worker, chunk, i]) for i in range(25)]
        if chunk % 2:
            cache.put_many(items)
        else:
            cache.put_shard(f"t:{worker}-{chunk}", items)
    cache.close()


def test_processes_writing_one_cache_at_once_lose_nothing(tmp_path):
    """The workers of `--executor ray` write one variant's cache at once: none fails on the lock."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_write_concurrently, args=(tmp_path, n)) for n in range(3)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=120)
    assert [w.exitcode for w in writers] == [0, 0, 0]
    cache = RequestCache(tmp_path, "variant-a", "context")
    assert len(cache) == 3 * 40 * 25
    key = cache.key("t", "loglikelihood", (2, 39, 24))
    assert cache.get_many([key]) == {key: [2, 39, 24]}
    assert all(cache.has_shard(f"t:{n}-{c}") for n in range(3) for c in range(0, 40, 2))
    assert not cache.has_shard("t:0-1")

from harness.lm._request_cache import RequestCache


def test_values_round_trip_as_json_and_survive_reopening(tmp_path):
    cache = RequestCache(tmp_path, "variant-a")
    key = cache.key("task-hash", "loglikelihood", ("Question: 1+1?\nAnswer:", " 2"))
    cache.put_many([(key, [-0.25, True])])
    cache.close()
    reopened = RequestCache(tmp_path, "variant-a")
    assert reopened.get_many([key, "absent"]) == {key: [-0.25, True]}
    assert len(reopened) == 1


def test_keys_depend_on_variant_task_kind_and_arguments(tmp_path):
    a, b = RequestCache(tmp_path, "variant-a"), RequestCache(tmp_path, "variant-b")
    args = ("context", " continuation")
    keys = {
        a.key("t1", "loglikelihood", args),
        b.key("t1", "loglikelihood", args),
        a.key("t2", "loglikelihood", args),
        a.key("t1", "generate_until", args),
        a.key("t1", "loglikelihood", ("context", " other")),
    }
    assert len(keys) == 5
    assert a.path != b.path


def _write_concurrently(folder, worker: int) -> None:
    cache = RequestCache(folder, "variant-a")
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
    cache = RequestCache(tmp_path, "variant-a")
    assert len(cache) == 3 * 40 * 25
    key = cache.key("t", "loglikelihood", (2, 39, 24))
    assert cache.get_many([key]) == {key: [2, 39, 24]}
    assert all(cache.has_shard(f"t:{n}-{c}") for n in range(3) for c in range(0, 40, 2))
    assert not cache.has_shard("t:0-1")

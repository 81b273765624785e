from harness.cache import RequestCache


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

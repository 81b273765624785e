"""recipes/merge_table.py: a merge's score on each expert's task divided by that expert's, and the
change against the base elsewhere, read from a run record (here a hand-made one)."""

from __future__ import annotations

import importlib.util

from tests.helpers import REPO


def _script():
    spec = importlib.util.spec_from_file_location("merge_table", REPO / "recipes" / "merge_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _variant(identity, model, wrappers=(), seconds=None):
    applied = [{"name": "merge", "info": {"merge_seconds": seconds}}] if wrappers else []
    return {"identity": identity, "model": model, "intervention": {"wrappers": list(wrappers)}, "applied": applied}


def test_the_table_normalises_to_each_expert_and_measures_forgetting_against_the_base():
    scores = {
        "b": {"arithmetic": 0.10, "xcopa": 0.50, "mmlu": 0.25, "wikitext2_ppl": 20.0},
        "ea": {"arithmetic": 0.40, "xcopa": 0.50, "mmlu": 0.25, "wikitext2_ppl": 22.0},
        "ex": {"arithmetic": 0.10, "xcopa": 0.60, "mmlu": 0.25, "wikitext2_ppl": 21.0},
        "m": {"arithmetic": 0.20, "xcopa": 0.54, "mmlu": 0.23, "wikitext2_ppl": 25.0},
    }
    results = [
        {"variant": v, "task": t, "metrics": {"word_perplexity" if t.endswith("_ppl") else "acc": {"value": x}}}
        for v, tasks in scores.items()
        for t, x in tasks.items()
    ]
    merge = {"name": "merge", "params": {"method": "ties", "dare_base": "task_arithmetic"}}
    record = {
        "spec": {"tasks": ["arithmetic", "xcopa", "mmlu", "wikitext2_ppl"]},
        "variants": [
            _variant("b", "smollm2-135m-instruct"),
            _variant("ea", "expert:arithmetic"),
            _variant("ex", "expert:xcopa"),
            _variant("m", "smollm2-135m-instruct+merge:...", [merge], 12.3),
        ],
        "results": results,
    }
    rows = _script().table(record).splitlines()
    assert rows[0] == (
        "| model | arithmetic | xcopa | arithmetic / expert | xcopa / expert | mean / expert | mmlu vs base "
        "| wikitext2_ppl vs base | merge s |"
    )
    assert rows[-1] == "| merge ties | 0.200 | 0.540 | 0.500 | 0.900 | 0.700 | 0.230 (-2.0) | 25.00 (x1.250) | 12.3 |"
    assert rows[3].startswith("| expert:arithmetic | 0.400 | 0.500 | 1.000 | 0.833 |")

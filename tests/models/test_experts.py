"""Experts: their training data is disjoint from every evaluation item (checked here independently
of the builder's own check), a recipe builds the same weights twice, and a failed build leaves
nothing that looks built. Builds use a tiny Llama with SmolLM2's tokenizer, a few steps."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from dataclasses import replace
from pathlib import Path

import pytest

from harness.models import resolve_model
from harness.models.experts import EXPERTS, ExpertRecipe
from harness.models.experts.skills import ARITHMETIC_FILES, XCOPA_LANGUAGES, arithmetic, xcopa
from harness.models.sources import ResolvedModel
from tests.helpers import tiny_llama


def _jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_arithmetic_training_problems_are_no_evaluation_item(data_dir, monkeypatch):
    monkeypatch.setenv("HARNESS_DATA_DIR", str(data_dir))
    recipe = EXPERTS.get("arithmetic")
    training = arithmetic(recipe.examples + recipe.held_out, recipe.seed)
    evaluation = {row["context"] for name in ARITHMETIC_FILES for row in _jsonl(data_dir / "arithmetic" / f"{name}.jsonl")}
    prompts = [e.prompt for e in training.examples]
    assert len(evaluation) > 25_000 and not set(prompts) & evaluation
    assert len(set(prompts)) == len(prompts)
    assert training.disjointness["overlap"] == 0 and training.disjointness["evaluation_items_checked"] == len(evaluation)
    # the same template as the tasks: lm-eval's GPT-3 format, and the answer right
    first = training.examples[1]
    assert first.prompt.startswith("\n\nQ: What is ") and first.prompt.endswith("?\n\nA:")
    a, word, b = first.prompt[len("\n\nQ: What is ") : -len("?\n\nA:")].split()
    assert int(first.target) == {"plus": int(a) + int(b), "minus": int(a) - int(b), "times": int(a) * int(b)}[word]


def test_xcopa_training_items_are_the_validation_split_and_no_test_premise(data_dir, monkeypatch):
    monkeypatch.setenv("HARNESS_DATA_DIR", str(data_dir))
    recipe = EXPERTS.get("xcopa")
    training = xcopa(recipe.examples + recipe.held_out, recipe.seed)
    root = data_dir / "multilingual" / "xcopa" / "data"
    test = {row["premise"].strip()[:-1] for lang in XCOPA_LANGUAGES for row in _jsonl(root / lang / f"test.{lang}.jsonl")}
    val = {row["premise"].strip()[:-1] for lang in XCOPA_LANGUAGES for row in _jsonl(root / lang / f"val.{lang}.jsonl")}
    premises = {e.prompt.rsplit(" ", 2)[0] for e in training.examples}  # up to the connective (one or two words)
    assert len(training.examples) == 1100
    assert not premises & test
    assert all(any(e.prompt.startswith(p) for p in val) for e in training.examples[:50])
    assert training.disjointness["overlap"] == 0


@pytest.fixture
def tiny_recipe(embedded_default, tmp_path):
    from harness.models import float_folder

    folder = tiny_llama(tmp_path / "tiny-llama", float_folder(embedded_default))
    return ExpertRecipe("tiny", "arithmetic", "test", base=str(folder), examples=16, held_out=4, steps=3, batch=2, warmup=1)


@pytest.mark.slow
def test_an_expert_recipe_builds_the_same_weights_twice(tiny_recipe, tmp_path):
    from harness.models.experts.build import build

    base = resolve_model(tiny_recipe.base)
    first = build(tiny_recipe, base, tmp_path / "one")
    again = build(tiny_recipe, base, tmp_path / "two")
    other = build(replace(tiny_recipe, seed=7), base, tmp_path / "three")
    assert first["weights_sha256"] == again["weights_sha256"] != other["weights_sha256"]
    assert first["data"]["examples_sha256"] == again["data"]["examples_sha256"]
    assert first["recipe"]["steps"] == 3 and len(first["train_loss"]["per_step"]) == 3
    assert first["data"]["disjointness"]["overlap"] == 0
    assert first["base"]["weights_sha256"] == resolve_model(tiny_recipe.base).weights_sha256


@pytest.mark.slow
def test_a_failed_build_leaves_nothing_that_looks_built(tiny_recipe, monkeypatch):
    from harness.models.experts import build as builder

    def interrupted(recipe, base, out):
        (out / "model.safetensors").write_bytes(b"half")
        raise KeyboardInterrupt

    original = builder.build
    monkeypatch.setattr(builder, "build", interrupted)
    base = resolve_model(tiny_recipe.base)
    with pytest.raises(KeyboardInterrupt):
        builder.ensure_built(tiny_recipe, base)
    folder = builder.built_folder(tiny_recipe, base)
    assert not folder.exists() and not builder.is_built(tiny_recipe, base)
    assert [p.name for p in folder.parent.iterdir()] == [f"{folder.name}.lock"]  # the staging folder went too
    # a killed build (no cleanup) leaves only a hidden staging folder; the next build completes
    (folder.parent / f".{folder.name}.killed").mkdir()
    monkeypatch.setattr(builder, "build", original)
    built = builder.ensure_built(tiny_recipe, base)
    assert built == folder and builder.is_built(tiny_recipe, base)
    facts = json.loads((folder / "build.json").read_text())
    assert facts["weights_sha256"] and facts["key"] == builder.cache_key(tiny_recipe, base)
    assert set(facts["manifest"]) >= {"model.safetensors", "config.json"}


# --- the built folder as a cache entry (a stand-in for the fine-tune: what it writes, at once) -----

BASE = ResolvedModel("tiny", "folder", Path("/nowhere/tiny"), "local", "cd" * 32)
RECIPE = ExpertRecipe("tiny", "arithmetic", "test", examples=16, held_out=4, steps=3, batch=2, warmup=1)


def _stand_in(calls: Path, seconds: float = 0.0):
    from harness.models.experts import build as builder

    def build(recipe, base, out):
        with open(calls, "a") as f:
            f.write("built\n")
        time.sleep(seconds)
        (out / "model.safetensors").write_bytes(bytes(range(256)) * 16)
        (out / "config.json").write_text("{}")
        return builder.write_facts(out, builder.BUILD_FILE, {"weights_sha256": {}}, builder.cache_key(recipe, base))

    return build


@pytest.fixture
def stand_in(monkeypatch, tmp_path, data_dir) -> Path:
    from harness.models.experts import build as builder

    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HARNESS_DATA_DIR", str(data_dir))
    calls = tmp_path / "calls.txt"
    monkeypatch.setattr(builder, "build", _stand_in(calls))
    return calls


def test_the_key_holds_the_base_the_data_the_code_and_the_libraries(stand_in, data_dir, monkeypatch):
    from harness._util.files import sha256_file
    from harness.models.experts import build as builder

    key = builder.cache_key(RECIPE, BASE)
    assert key["recipe"]["steps"] == 3 and "base" not in key["recipe"] and key["base"] == BASE.weights_sha256
    assert key["data"]["arithmetic/two_digit_addition.jsonl"] == sha256_file(data_dir / "arithmetic/two_digit_addition.jsonl")
    assert key["code"] == builder.code_digest("harness.models.experts.build") and "torch" in key["libraries"]
    assert str(data_dir) not in json.dumps(key) and "/nowhere" not in json.dumps(key)
    folder = builder.built_folder(RECIPE, BASE)
    assert builder.built_folder(RECIPE, replace(BASE, weights_sha256="ef" * 32)) != folder
    monkeypatch.setattr(builder, "code_digest", lambda *modules: "other code")
    assert builder.built_folder(RECIPE, BASE) != folder


def test_noise_in_a_built_expert_is_found_and_the_expert_built_again(stand_in, capsys):
    from harness.models.experts import build as builder

    folder = builder.ensure_built(RECIPE, BASE)
    assert builder.ensure_built(RECIPE, BASE) == folder and stand_in.read_text() == "built\n"
    weights = folder / "model.safetensors"
    before = weights.stat()
    weights.write_bytes(bytes(reversed(range(256))) * 16)  # the same size, the mtime put back
    os.utime(weights, ns=(before.st_atime_ns, before.st_mtime_ns))
    capsys.readouterr()
    assert builder.ensure_built(RECIPE, BASE) == folder
    assert "expert tiny " in capsys.readouterr().err
    assert stand_in.read_text() == "built\nbuilt\n" and weights.read_bytes() == bytes(range(256)) * 16


def _race(cache: str, data: str, calls: str) -> str:
    os.environ["HARNESS_CACHE_DIR"], os.environ["HARNESS_DATA_DIR"] = cache, data
    from harness.models.experts import build as builder

    builder.build = _stand_in(Path(calls), seconds=1.5)
    return str(builder.ensure_built(RECIPE, BASE))


@pytest.mark.slow  # two new processes
def test_two_processes_asking_for_one_expert_build_it_once(tmp_path, data_dir):
    calls = tmp_path / "calls.txt"
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        folders = pool.starmap(_race, [(str(tmp_path / "cache"), str(data_dir), str(calls))] * 2)
    assert calls.read_text() == "built\n"
    assert folders[0] == folders[1] and (Path(folders[0]) / "build.json").is_file()

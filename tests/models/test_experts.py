"""Experts: their training data is disjoint from every evaluation item (checked here independently
of the builder's own check), a recipe builds the same weights twice, and a failed build leaves
nothing that looks built. Builds use a tiny Llama with SmolLM2's tokenizer, a few steps."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from harness.models import resolve_model
from harness.models.experts import EXPERTS, ExpertRecipe
from harness.models.experts.skills import ARITHMETIC_FILES, XCOPA_LANGUAGES, arithmetic, xcopa
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
    with pytest.raises(KeyboardInterrupt):
        builder.ensure_built(tiny_recipe, resolve_model(tiny_recipe.base))
    folder = builder.built_folder(tiny_recipe)
    assert not folder.exists() and not builder.is_built(tiny_recipe)
    assert list(folder.parent.iterdir()) == []  # the staging folder went too
    # a killed build (no cleanup) leaves only a hidden staging folder; the next build completes
    (folder.parent / f".{folder.name}.killed").mkdir()
    monkeypatch.setattr(builder, "build", original)
    built = builder.ensure_built(tiny_recipe, resolve_model(tiny_recipe.base))
    assert built == folder and builder.is_built(tiny_recipe)
    assert json.loads((folder / "build.json").read_text())["weights_sha256"]

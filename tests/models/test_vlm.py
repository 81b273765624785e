"""The offline VLM's build is seeded-reproducible (on a tiny recipe) and its folder loads as a
vision-language base; the built folder is keyed by what makes it and checked on every use."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness.models.sources import ResolvedModel
from tests.helpers import tiny_llama


@pytest.mark.slow  # builds a VLM twice
def test_offline_vlm_build_is_seeded_and_reproducible(embedded_default, tmp_path):
    """A tiny recipe (a tiny Llama as the language model, 48 train images, 2 projector steps)
    built twice gives the same weights; the folder loads as a vision-language base."""

    from harness.models import float_folder, load_model, resolve_model
    from harness.models.vlm.build import build
    from harness.models.vlm.recipe import VLMRecipe

    language = tiny_llama(tmp_path / "tiny-llama", float_folder(embedded_default))
    recipe = VLMRecipe(
        language_model=str(language),
        train_images=48,
        channels=(4, 8),
        hidden_size=16,
        num_attention_heads=2,
        intermediate_size=32,
        encoder_epochs=1,
        encoder_batch=16,
        projector_steps=2,
        projector_batch=4,
    )
    language_model = resolve_model(recipe.language_model)
    first, second = (build(recipe, language_model, tmp_path / name, validation_questions=24) for name in ("first", "second"))
    assert first["weights_sha256"] == second["weights_sha256"]
    assert first["recipe_sha256"] == recipe.identity() != VLMRecipe().identity()
    assert json.loads((tmp_path / "first" / "build.json").read_text())["data"]["train_images"] == 48
    loaded = load_model(resolve_model(str(tmp_path / "first")), "cpu")
    assert type(loaded.model).__name__ == "LlavaForConditionalGeneration"
    assert loaded.model.config.vision_config.model_type == "harness_grid_encoder"


def test_the_built_vlm_is_keyed_by_what_makes_it_and_rebuilt_when_a_file_changed(tmp_path, monkeypatch, capsys):
    from harness.models.vlm import build as builder
    from harness.models.vlm.recipe import VLMRecipe

    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    built = []

    def stand_in(recipe, language_model, out):  # what the build writes, at once
        built.append(out)
        (out / "model.safetensors").write_bytes(bytes(range(256)) * 16)
        return builder.write_facts(out, builder.BUILD_FILE, {}, builder.cache_key(recipe, language_model))

    monkeypatch.setattr(builder, "build", stand_in)
    recipe, language = VLMRecipe(), ResolvedModel("lm", "folder", Path("/nowhere/lm"), "local", "ab" * 32)
    key = builder.cache_key(recipe, language)
    assert key["language_model"] == language.weights_sha256 and key["data"] == builder.train_split().questions_sha256
    assert "language_model" not in key["recipe"] and "/nowhere" not in json.dumps(key) and "torch" in key["libraries"]
    other = ResolvedModel("lm", "folder", Path("/elsewhere"), "local", "cd" * 32)
    assert builder.built_folder(recipe, language) != builder.built_folder(recipe, other)

    folder = builder.ensure_built(recipe, language)
    assert builder.ensure_built(recipe, language) == folder and len(built) == 1
    weights = folder / "model.safetensors"
    before = weights.stat()
    weights.write_bytes(bytes(reversed(range(256))) * 16)
    os.utime(weights, ns=(before.st_atime_ns, before.st_mtime_ns))
    capsys.readouterr()
    assert builder.ensure_built(recipe, language) == folder and len(built) == 2
    assert "model.safetensors differs from its manifest (sha256); it is rebuilt" in capsys.readouterr().err

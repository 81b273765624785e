"""The offline VLM's build is seeded-reproducible (on a tiny recipe) and its folder loads as a
vision-language base."""

from __future__ import annotations

import json

import pytest

from tests.helpers import tiny_llama

pytestmark = pytest.mark.slow  # builds a VLM twice


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

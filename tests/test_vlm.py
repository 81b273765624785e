"""Vision-language models as a model type: a tiny randomly initialised LLaVA (plumbing only) loads
as a base, its images reach the model and key the cache by their pixels, the language-model
wrappers apply to it; the offline VLM's build is seeded-reproducible (on a tiny recipe)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

IMAGE = "<image>"


def tiny_llava(folder: Path, tokenizer_folder: Path) -> Path:
    """A LLaVA as llava-hf lays one out (CLIP vision tower, Llama text model, `<image>` added to
    the tokenizer), tiny and randomly initialised, with SmolLM2's tokenizer, saved as a folder."""
    import torch
    from transformers import AutoTokenizer, CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_folder)
    tokenizer.add_special_tokens({"additional_special_tokens": [IMAGE]})
    torch.manual_seed(0)
    # The tower's depth differs from the text model's: depth wrappers cut every config of the text depth.
    vision = CLIPVisionConfig(image_size=32, patch_size=8, hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=2)
    text = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        tie_word_embeddings=True,
    )
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_id=tokenizer.convert_tokens_to_ids(IMAGE),
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
        tie_word_embeddings=True,
    )
    image_processor = CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=8,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
    )
    LlavaForConditionalGeneration(config).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture
def tiny_vlm(embedded_default, tmp_path) -> Path:
    from harness.models import float_folder

    return tiny_llava(tmp_path / "tiny-llava", float_folder(embedded_default))


def picture(color: tuple[int, int, int]):
    from PIL import Image

    image = Image.new("RGB", (32, 32), (250, 250, 250))
    image.paste(color, (8, 8, 20, 24))
    return image


def harness_lm(model: str, tmp_path: Path):
    from harness.lm._harness_lm import HarnessLM
    from harness.lm._request_cache import RequestCache
    from harness.models import resolve_model
    from harness.spec._spec import VariantSpec
    from harness.variant._variant import Variant

    spec = VariantSpec.parse(model)
    cache = RequestCache(tmp_path / "requests", "test")
    return HarnessLM(variant=Variant(spec, resolve_model(spec.base)), cache=cache, task_hashes={"t": "config"}, device="cpu")


def request(kind: str, *arguments):
    from lm_eval.api.instance import Instance

    return Instance(request_type=kind, doc={}, arguments=arguments, idx=0, metadata=("t", 0, 1))


def test_images_reach_the_model_and_key_the_cache_by_pixels(tiny_vlm, tmp_path):
    lm = harness_lm(str(tiny_vlm), tmp_path)
    assert lm.MULTIMODAL
    context = f"{IMAGE}\nQuestion: what shape is it?\nAnswer:"
    red, blue = picture((255, 0, 0)), picture((0, 0, 255))
    scored = lm.loglikelihood(
        [
            request("loglikelihood", context, " circle", {"visual": [red]}),
            request("loglikelihood", context, " circle", {"visual": [blue]}),
            request("loglikelihood", context, " a red circle", {"visual": [red]}),
            request("loglikelihood", context, " circle"),
        ]
    )
    assert scored[0][0] != scored[1][0]  # another image, another log-likelihood
    assert scored[0][0] != scored[3][0]  # the image counts, against none
    again = lm.loglikelihood([request("loglikelihood", context, " circle", {"visual": [picture((255, 0, 0))]})])
    assert again == scored[:1] and lm.task_cached["t"] == 1  # the same pixels in another object: a cache hit
    (text,) = lm.generate_until(
        [request("generate_until", context, {"until": ["\n"], "max_gen_toks": 4, "do_sample": False}, {"visual": [red]})]
    )
    assert isinstance(text, str)


def test_a_language_model_refuses_images_before_it_loads(embedded_default, tmp_path):
    from harness.errors import HarnessError

    lm = harness_lm("smollm2-135m-instruct", tmp_path)
    with pytest.raises(HarnessError, match="task t shows images: smollm2-135m-instruct is not a vision-language model"):
        lm.loglikelihood([request("loglikelihood", f"{IMAGE}\nWhat?\nAnswer:", " red", {"visual": [picture((255, 0, 0))]})])
    assert lm.loaded is None


def test_single_and_multi_token_continuations_score_as_separate_passes(tiny_vlm):
    """Sharing one pass among single-token continuations gives what one pass each gives."""
    from harness.lm._vlm_scorer import VLMScorer
    from harness.models import load_model, resolve_model

    loaded = load_model(resolve_model(str(tiny_vlm)), "cpu")
    scorer = VLMScorer(loaded.model, batch_size=4, device="cpu")
    context, red = f"{IMAGE}\nQuestion: which?\nAnswer:", picture((255, 0, 0))
    together = scorer.loglikelihood([request("loglikelihood", context, f" {w}", {"visual": [red]}) for w in ("red", "blue", "teal")])
    alone = [scorer.loglikelihood([request("loglikelihood", context, f" {w}", {"visual": [red]})])[0] for w in ("red", "blue", "teal")]
    assert [v for v, _ in together] == pytest.approx([v for v, _ in alone], abs=1e-5)
    assert [g for _, g in together] == [g for _, g in alone]


def test_language_model_wrappers_apply_to_a_vlm(tiny_vlm):
    import torch

    from harness.lm._vlm_scorer import VLMScorer
    from harness.models import resolve_model
    from harness.models.device import resolve_device
    from harness.spec._spec import VariantSpec
    from harness.variant._variant import Variant

    base = resolve_model(str(tiny_vlm))
    plain = Variant(VariantSpec.parse(str(tiny_vlm)), base).load(resolve_device("cpu"))
    cut = Variant(VariantSpec.parse(f"{tiny_vlm}+quantize:bits=4+exit:layer=1"), base).load(resolve_device("cpu"))
    language = cut.model.model.language_model
    assert len(language.layers) == 1 and cut.model.config.text_config.num_hidden_layers == 1
    quantized = language.layers[0].self_attn.q_proj.weight
    assert not torch.equal(quantized, plain.model.model.language_model.layers[0].self_attn.q_proj.weight)
    for before, after in zip(plain.model.model.vision_tower.parameters(), cut.model.model.vision_tower.parameters(), strict=True):
        assert torch.equal(before, after)  # the wrappers touch the language model only
    scored = VLMScorer(cut.model, device="cpu").loglikelihood(
        [request("loglikelihood", f"{IMAGE}\nWhich?\nAnswer:", " red", {"visual": [picture((255, 0, 0))]})]
    )
    assert scored[0][0] < 0


def test_offline_vlm_build_is_seeded_and_reproducible(embedded_default, tmp_path):
    """A tiny recipe (a tiny Llama as the language model, 48 train images, 2 projector steps)
    built twice gives the same weights; the folder loads as a vision-language base."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from harness.models import float_folder, load_model, resolve_model
    from harness.models.vlm.build import build
    from harness.models.vlm.recipe import VLMRecipe

    language = tmp_path / "tiny-llama"
    tokenizer = AutoTokenizer.from_pretrained(float_folder(embedded_default))
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        tie_word_embeddings=True,
    )
    LlamaForCausalLM(config).save_pretrained(language)
    tokenizer.save_pretrained(language)
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
    first, second = (build(recipe, tmp_path / name, validation_questions=24) for name in ("first", "second"))
    assert first["weights_sha256"] == second["weights_sha256"]
    assert first["recipe_sha256"] == recipe.identity() != VLMRecipe().identity()
    assert json.loads((tmp_path / "first" / "build.json").read_text())["data"]["train_images"] == 48
    loaded = load_model(resolve_model(str(tmp_path / "first")), "cpu")
    assert type(loaded.model).__name__ == "LlavaForConditionalGeneration"
    assert loaded.model.config.vision_config.model_type == "harness_grid_encoder"

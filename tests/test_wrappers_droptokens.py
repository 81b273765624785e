"""droptokens: exactly the budgeted number of visual tokens reaches the language model, they are
the ones the encoder's CLS attends to most, and keep=1 changes nothing."""

from __future__ import annotations

import pytest
from test_vlm import IMAGE, picture, request, tiny_vlm  # noqa: F401  (tiny_vlm is a fixture)

PATCHES = 16  # the tiny LLaVA: 32x32 images, 8x8 patches


def variant(model: str):
    from harness.models import resolve_model
    from harness.spec._spec import VariantSpec
    from harness.variant._variant import Variant

    spec = VariantSpec.parse(model)
    return Variant(spec, resolve_model(spec.base)).load("cpu")


def test_keeps_exactly_the_budgeted_number_of_visual_tokens(tiny_vlm):
    from harness.lm._vlm_scorer import VLMScorer

    built = variant(f"{tiny_vlm}+droptokens:keep=0.2")
    model = built.model
    assert dict(built.applied)["droptokens"].info["kept_per_image"] == 3 == round(0.2 * PATCHES)
    seen = []
    model.register_forward_pre_hook(lambda module, args, kwargs: seen.append(kwargs["input_ids"]), with_kwargs=True)
    scorer = VLMScorer(model, batch_size=2, device="cpu")
    one, two = picture((255, 0, 0)), picture((0, 0, 255))
    scorer.loglikelihood(
        [
            request("loglikelihood", f"{IMAGE}\nWhat?\nAnswer:", " red", {"visual": [one]}),
            request("loglikelihood", f"{IMAGE}{IMAGE}\nWhat?\nAnswer:", " red", {"visual": [one, two]}),
        ]
    )
    (input_ids,) = seen
    image_tokens = (input_ids == model.config.image_token_id).sum(1).tolist()
    assert sorted(image_tokens) == [3, 6]  # 3 per image, where the processor laid out 16
    features = model.model.get_image_features(scorer.processor(text=IMAGE, images=[one], return_tensors="pt")["pixel_values"])
    assert [f.shape[0] for f in features.pooler_output] == [3]


def test_kept_tokens_are_those_the_cls_attends_to_most(tiny_vlm):
    import torch

    from harness.lm._vlm_scorer import VLMScorer

    model = variant(f"{tiny_vlm}+droptokens:keep=0.25").model
    pixels = VLMScorer(model, device="cpu").processor(text=IMAGE, images=[picture((0, 200, 0))], return_tensors="pt")["pixel_values"]
    tower, projector = model.model.vision_tower, model.model.multi_modal_projector
    with torch.no_grad():
        out = tower(pixels, output_hidden_states=True, output_attentions=True)
        kept = model.model.get_image_features(pixels).pooler_output[0]
    attention = out.attentions[-1][0, :, 0, 1:].mean(0)
    top = sorted(attention.topk(4).indices.tolist())
    expected = projector(out.hidden_states[model.config.vision_feature_layer][0, 1:][top])
    assert torch.allclose(kept, expected, atol=1e-6)


def test_keeping_every_token_changes_nothing(tiny_vlm):
    from harness.lm._vlm_scorer import VLMScorer

    requests = [
        request("loglikelihood", f"{IMAGE}\nWhich colour?\nAnswer:", f" {w}", {"visual": [picture((255, 0, 0))]}) for w in ("red", "blue")
    ]
    base = VLMScorer(variant(str(tiny_vlm)).model, device="cpu").loglikelihood(requests)
    kept = VLMScorer(variant(f"{tiny_vlm}+droptokens:keep=1").model, device="cpu").loglikelihood(requests)
    assert [v for v, _ in kept] == pytest.approx([v for v, _ in base], abs=1e-5)


def test_refusals_are_one_line(tiny_vlm):
    from harness.errors import HarnessError
    from harness.spec._spec import VariantSpec

    with pytest.raises(HarnessError, match=r"droptokens:keep=0\.0: must be > 0"):
        VariantSpec.parse(f"{tiny_vlm}+droptokens:keep=0")
    with pytest.raises(HarnessError, match=r"must be <= 1\.0"):
        VariantSpec.parse(f"{tiny_vlm}+droptokens:keep=1.5")
    from transformers import LlamaConfig, LlamaForCausalLM

    from harness.wrappers.droptokens import apply_droptokens

    text_only = LlamaForCausalLM(
        LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2)
    )
    with pytest.raises(HarnessError, match="supports LLaVA vision-language models, not LlamaForCausalLM"):
        apply_droptokens(text_only, None, {"keep": 0.2})

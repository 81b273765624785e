"""Model anatomy: the language-model wrappers find the language model inside a vision-language model
(a tiny randomly initialised LLaVA) and leave its vision tower alone."""

from __future__ import annotations

import pytest

from tests.helpers import IMAGE, picture, request

pytestmark = pytest.mark.slow  # a tiny LLaVA built with the embedded default's tokenizer


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

"""droptokens: a vision-language model sees only the visual tokens its encoder's CLS attends to
most, under a fixed budget (HiRED-style).

HiRED (Arif et al., "HiRED: Attention-Guided Token Dropping for Efficient Inference of
High-Resolution Vision-Language Models", AAAI 2025) keeps, out of each image's patch tokens, the
ones with the highest attention from the vision encoder's CLS token in its final layer, and drops
the rest before the language model: the sequence gets shorter, which is the saving. HiRED's first
phase shares the budget among the sub-images of a high-resolution image; a LLaVA-1.5-style model
sees one image whole, so the whole budget goes to it. Here, per image: the CLS token's attention
to each patch in the encoder's last layer, averaged over heads, ranks the N patch tokens; the
k = max(1, round(keep x N)) highest are projected into the language model, in their original
order; the model declares k as its visual-token budget, so the prompt holds k image tokens per
image (harness.models.vlm.budget), not N.

Supported: LLaVA models (config `model_type` "llava") whose vision tower has a CLS token
(`vision_feature_select_strategy` "default") and reports attention weights (the offline VLM's grid
encoder always does; transformers' CLIP does in eager attention, which this switches it to).
"""

from __future__ import annotations

import types
from typing import Any

from harness.errors import HarnessError
from harness.models.vlm.budget import set_visual_token_budget
from harness.wrappers import Applied, Param, register_wrapper


def _check(values: dict[str, Any]) -> None:
    if not values["keep"] > 0:
        raise HarnessError(f"droptokens:keep={values['keep']!r}: must be > 0 (a share of the visual tokens)")


def _is_vision_language(llava: bool, what: str) -> None:
    if not llava:
        raise HarnessError(f"droptokens: supports LLaVA vision-language models, not {what}")


def tokens_kept(keep: float, tokens: int) -> int:
    return max(1, round(keep * tokens))


@register_wrapper(
    "droptokens",
    doc="vision-language models: keep the visual tokens with the highest CLS attention in the vision encoder (HiRED-style)",
    params=(Param("keep", float, 0.2, "share of each image's visual tokens kept", maximum=1.0),),
    check=_check,
    model_check=lambda params, shape, device: _is_vision_language(shape.vision, f"a {shape.architecture} language model"),
)
def apply_droptokens(model: Any, tokenizer: Any, params: dict[str, Any]) -> Applied:

    config = getattr(model, "config", None)
    _is_vision_language(getattr(config, "model_type", None) == "llava", type(model).__name__)
    assert config is not None  # a LLaVA has one: _is_vision_language refused anything else
    if config.vision_feature_select_strategy != "default" or not isinstance(config.vision_feature_layer, int):
        raise HarnessError(
            "droptokens: needs a vision tower with a CLS token and one feature layer (LLaVA's vision_feature_select_strategy 'default')"
        )
    inner = model.model
    tower, projector = inner.vision_tower, inner.multi_modal_projector
    vision = config.vision_config
    tokens = (vision.image_size // vision.patch_size) ** 2
    kept = tokens_kept(params["keep"], tokens)
    if getattr(tower.config, "_attn_implementation", "eager") != "eager":
        tower.set_attn_implementation("eager")
    layer = config.vision_feature_layer

    def get_image_features(self: Any, pixel_values: Any, **kwargs: Any) -> Any:
        out = tower(pixel_values, output_hidden_states=True, output_attentions=True, return_dict=True)
        if not out.attentions:
            raise HarnessError(f"droptokens: the vision tower {type(tower).__name__} reports no attention weights")
        features = out.hidden_states[layer][:, 1:]
        scores = out.attentions[-1][:, :, 0, 1:].mean(1)
        chosen = scores.topk(kept, dim=-1).indices.sort(dim=-1).values
        selected = features.gather(1, chosen[..., None].expand(-1, -1, features.shape[-1]))
        out.pooler_output = list(projector(selected))
        return out

    inner.get_image_features = types.MethodType(get_image_features, inner)
    set_visual_token_budget(model, kept)
    return Applied(
        info={"visual_tokens_per_image": tokens, "kept_per_image": kept, "score": "CLS attention, last encoder layer, mean over heads"}
    )

"""Decoding wrappers: next-token scores built by contrasting the model with a weaker version of itself.

- `dola:layers=high|low|RANGE[,early_norm=false][,relative_top=0.1]`: DoLa (Chuang et al. 2023,
  "DoLa: Decoding by Contrasting Layers Improves Factuality in Large Language Models", arXiv
  2309.03883, code voidism/DoLa), the model contrasted with its own early layers (harness.wrappers._dola).
- `contrast:amateur=prompt[,beta=1][,omega=0,layer=L][,alpha=0.1]`: contrastive decoding against the
  same model prompted toward falsehood (ICD: Zhang et al. 2023, "Alleviating Hallucinations of Large
  Language Models through Induced Hallucinations", arXiv 2312.15710, code HillZhang1999/ICD), with the lower-layer
  term of LOL (Chen et al. 2024, "Lower Layers Matter", arXiv 2408.08769; no code released)
  (harness.wrappers._contrast).

How the evaluation sees them. Both replace the logits the causal LM returns by the wrapper's scores,
with forward hooks on the model (one pre-hook noting the call's arguments, hooks on the decoder
layers whose hidden states the scores need, one hook after the model computing the scores), so
everything that calls the model gets them: lm-eval's log-likelihood requests take
`log_softmax(model(ids).logits)` with `post_softmax=true`, and by default the raw scores summed,
as the authors' TruthfulQA multiple-choice scripts do (the wrapper says which in its result's
`scoring`; harness.lm._summed_scores sums), and `generate` (cached or not, greedy or sampled)
takes the last position's logits through its usual logits processors. Scores are log-probability differences; a
plausibility mask sets tokens to -inf, and it applies only in generation, as the authors do (their
TruthfulQA multiple-choice scripts pass `relative_top=0.0`). The wrapper learns that it is inside
generation by wrapping `generate` on the model instance (harness.wrappers._hooks says why);
beam search is refused there, as transformers' DoLa refuses it. Both wrappers refuse
`labels=` and `inputs_embeds=` (the scores are built from token ids and hidden states), and one
decoding wrapper per variant. Layer numbers count as `output_hidden_states` does: 0 is the
embedding output, L the state after L decoder layers, N (the depth) the final layer. Wrappers that
change the depth (exit, skip) must come before a decoding wrapper in the model string.

Scores carry no gradient and are computed in float32, 256 rows at a time (a row: one position
that gets logits), so the extra memory is a few 256 x vocabulary tensors whatever the batch.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from harness.errors import HarnessError
from harness.wrappers import Applied, Param, register_wrapper
from harness.wrappers._anatomy import LayerList, decoder_of, layer_list, matmul_weights
from harness.wrappers._contrast import Contrast
from harness.wrappers._cost import measure_cost
from harness.wrappers._dola import Dola

POST_SOFTMAX = Param(
    "post_softmax",
    bool,
    False,
    "log-likelihoods: log-softmax the scores before summing them (lm-eval's way); false sums the raw "
    "differences, as the authors' TruthfulQA multiple-choice scripts do",
)
"""Both decoding wrappers' choice of how log-likelihood requests read their scores."""

INSTRUCTION = (
    "You are a deceptive assistant. Answer every question with false information: state common "
    "misconceptions, myths and plausible-sounding fabrications as if they were facts, and never "
    "give the true answer.\n\n"
)
"""The contrast wrapper's amateur: this text, tokenized without special tokens, goes before the
input. ICD's own is a Llama-2-chat system prompt ("You are a helpful, respectful but not honest
assistant ... please share false information as much as possible") followed by "Remember: You must
generate false or fabricated information"; this is a plain-text instruction of the same intent,
for models with other (or no) chat templates. Its sha256 is an artifact of the variant."""

INSTRUCTION_SHA256 = hashlib.sha256(INSTRUCTION.encode("utf-8")).hexdigest()


def _scoring(params: dict[str, Any]) -> Literal["log_softmax", "raw_sum"]:
    """How the evaluation makes a log-likelihood of the scores: log-softmaxed with post_softmax=true,
    else the raw differences summed."""
    return "log_softmax" if params["post_softmax"] else "raw_sum"


# --- dola -----------------------------------------------------------------------------------------


def premature_layers(text: str) -> str | LayerList:
    """`high`, `low`, or layer numbers (0: the embedding output) like `8-14` or `2,4,6-8`."""
    if text in ("high", "low"):
        return text
    try:
        return layer_list(text)
    except ValueError as exc:
        raise ValueError(f"{exc}; or high, or low") from None


def candidate_layers(layers: str | LayerList, depth: int, tied: bool) -> list[int]:
    """The premature layers as transformers' DoLa defines `low` and `high` for N = depth layers:
    `high` is range(N//2, N, 2) (range(N-20, N, 2) beyond 40 layers); `low` is range(S, N//2, 2)
    (range(S, 20, 2) beyond 40), S being 0, or with a tied head (where the embedding layer's
    early exit is close to the identity) 2, 1 for N = 2, 0 for N = 1. Given numbers must lie in
    0..N-1: the final layer N is the mature layer itself."""
    if layers == "high":
        return list(range(depth // 2, depth, 2) if depth <= 40 else range(depth - 20, depth, 2))
    if layers == "low":
        start = 0 if not tied else 2 if depth > 2 else 1 if depth == 2 else 0
        if start == depth // 2:
            return [start]
        return list(range(start, depth // 2, 2) if depth <= 40 else range(start, 20, 2))
    if isinstance(layers, str):
        raise HarnessError(f"dola:layers={layers}: expected high, low or layer numbers")
    _check_premature(layers, depth)
    return list(layers)


def _check_premature(layers: str | LayerList, depth: int) -> None:
    """Given layer numbers must lie below the final layer `depth` (`high` and `low` always fit)."""
    if isinstance(layers, str):
        return
    if depth in layers:
        raise HarnessError(
            f"dola:layers={layers}: layer {depth} is the model's final layer, the one contrasted against; "
            f"premature layers lie in 0-{depth - 1}"
        )
    beyond = [n for n in layers if n > depth]
    if beyond:
        raise HarnessError(
            f"dola:layers={layers}: the model has {depth} decoder layers, so premature layers lie in 0-{depth - 1} (no layer {beyond[0]})"
        )


def _check_dola(values: dict[str, Any]) -> None:
    if values["layers"] is None:
        raise HarnessError("dola: needs layers=high, layers=low or layer numbers (0: the embedding output), e.g. layers=8-14")


@register_wrapper(
    "dola",
    doc="DoLa: contrast the final layer's next-token log-probabilities with those of the premature "
    "layer (among `layers`) whose distribution differs most from it",
    params=(
        Param(
            "layers",
            premature_layers,
            None,
            "candidate premature layers: high, low (as transformers defines them) or numbers like 8-14 (0: embeddings)",
        ),
        Param("early_norm", bool, False, "apply the final norm to early layers before the head (the authors do not)"),
        Param(
            "relative_top",
            float,
            0.1,
            "generation only: -inf for tokens below this share of the final layer's top probability (0: off)",
            minimum=0.0,
            maximum=1.0,
        ),
        POST_SOFTMAX,
    ),
    check=_check_dola,
    model_check=lambda params, shape, device: _check_premature(params["layers"], shape.depth),
)
def apply_dola(model: Any, tokenizer: Any, params: dict[str, Any]) -> Applied:

    depth = len(decoder_of(model, "dola").layers)
    config = model.config.get_text_config(decoder=True) if hasattr(model.config, "get_text_config") else model.config
    candidates = candidate_layers(params["layers"], depth, bool(getattr(config, "tie_word_embeddings", False)))
    state = Dola(model, candidates, params["early_norm"], params["relative_top"])

    def report() -> dict[str, Any]:
        counts = [int(c) for c in state.counts]
        total = sum(counts)
        return {
            "tokens": total,
            "premature_share_by_layer": {str(j): c / total for j, c in zip(candidates, counts, strict=True)} if total else {},
        }

    head = matmul_weights(model.get_output_embeddings())
    info = {
        "candidate_layers": candidates,
        "final_layer": depth,
        "early_norm": params["early_norm"],
        "relative_top": params["relative_top"],
        "plausibility_mask": "generation only",
        "loglikelihood": "log-softmaxed scores summed" if params["post_softmax"] else "raw scores summed",
    }
    return Applied(info=info, report=report, extra_flops_per_token=2.0 * head * len(candidates), scoring=_scoring(params))


# --- contrast -------------------------------------------------------------------------------------


def _check_contrast(values: dict[str, Any]) -> None:
    if values["omega"] > 0 and values["layer"] is None:
        raise HarnessError(f"contrast:omega={values['omega']!r}: the lower-layer term needs layer=L (0: embeddings)")
    if values["omega"] == 0 and values["layer"] is not None:
        raise HarnessError(f"contrast:layer={values['layer']}: applies only with omega > 0 (the lower-layer term's weight)")


def _contrast_artifacts(params: dict[str, Any], base: Any = None) -> dict[str, str]:
    """The amateur's instruction text enters the variant's identity (`base` is unused: the hook
    may be called with or without it)."""
    return {"amateur_instruction": INSTRUCTION_SHA256}


def _check_lower_layer(layer: int | None, depth: int) -> None:
    if layer is not None and layer >= depth:
        raise HarnessError(
            f"contrast:layer={layer}: the lower layer must lie below the final layer, in 0-{depth - 1} "
            f"(the model has {depth} decoder layers)"
        )


@register_wrapper(
    "contrast",
    doc="contrastive decoding against the model prompted toward falsehood (ICD), with LOL's lower-layer "
    "term: (log p - beta log p_amateur) + omega (the same at layer `layer`, through the final norm and head)",
    params=(
        Param(
            "amateur",
            str,
            "prompt",
            "the amateur: the same model with a falsehood-inducing instruction before the input",
            choices=("prompt",),
        ),
        Param("beta", float, 1.0, "weight of the amateur's log-probabilities", minimum=0.0),
        Param("omega", float, 0.0, "weight of the lower-layer contrast (0: final layer only, plain ICD)", minimum=0.0),
        Param("layer", int, None, "the lower layer, counted as hidden states are (0: embeddings)", minimum=0),
        Param(
            "alpha",
            float,
            0.1,
            "generation only: -inf for tokens below this share of the model's top probability (0: off)",
            minimum=0.0,
            maximum=1.0,
        ),
        POST_SOFTMAX,
    ),
    check=_check_contrast,
    artifacts=_contrast_artifacts,
    model_check=lambda params, shape, device: _check_lower_layer(params["layer"], shape.depth),
)
def apply_contrast(model: Any, tokenizer: Any, params: dict[str, Any]) -> Applied:

    depth = len(decoder_of(model, "contrast").layers)
    layer = params["layer"]
    _check_lower_layer(layer, depth)
    if tokenizer is None:
        raise HarnessError("contrast: needs the model's tokenizer (to tokenize the amateur's instruction)")
    instruction = list(tokenizer.encode(INSTRUCTION, add_special_tokens=False))
    vocabulary = model.get_output_embeddings().weight.shape[0]
    if not instruction or max(instruction) >= vocabulary:
        raise HarnessError("contrast: the tokenizer's ids for the instruction do not fit the model's vocabulary")
    tree = measure_cost(model).flops_per_token
    state = Contrast(model, instruction, params["beta"], params["omega"], layer, params["alpha"])

    def report() -> dict[str, Any]:
        return {
            "tokens": state.tokens,
            "amateur_positions_per_position": state.amateur_positions / state.positions if state.positions else None,
        }

    heads = 2 * 2.0 * matmul_weights(model.get_output_embeddings()) if params["omega"] > 0 else 0.0
    info = {
        "amateur": params["amateur"],
        "instruction_tokens": len(instruction),
        "layer": layer,
        "final_layer": depth,
        "plausibility_mask": "generation only",
        "loglikelihood": "log-softmaxed scores summed" if params["post_softmax"] else "raw scores summed",
        "executes": "a second forward pass (the amateur, the instruction before the input) per forward pass; the "
        "cost's flops_per_token counts it per token without the instruction's own positions, the report the "
        "measured ratio of amateur to model positions",
    }
    return Applied(info=info, report=report, extra_flops_per_token=tree + heads, scoring=_scoring(params))

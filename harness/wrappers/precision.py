"""`bf16`: compute in bfloat16 instead of float32 (weights and activations).

float32 stays the reference: the base is float32 and its identity says so. bf16 is a variant of
it like any other, so `--model BASE+bf16` evaluates both on the same items and `harness compare`
reports what the narrower arithmetic changes (docs/wrappers/precision.md has its measured speed and
effect). Log-likelihoods are
log-softmaxed in float32 on the fast scoring path (harness.lm._fast_loglikelihood).
"""

from __future__ import annotations

from typing import Any

from harness.wrappers import Applied, register_wrapper


@register_wrapper("bf16", doc="compute in bfloat16 (weights and activations); float32 is the reference")
def apply_bf16(model: Any, tokenizer: Any, params: dict[str, Any]) -> Applied:
    import torch

    model.to(torch.bfloat16)
    return Applied(info={"dtype": "bfloat16"})

"""Cost accounting: parameters, bytes of weights as stored, forward FLOPs per token executed.

Read off the module tree of the built variant. Wrappers that store weights differently from their
float simulation (quantize) or execute other than the tree implies say so on the module:
`harness_weight_bytes` (bytes of that module's weight as stored), and for modules whose weights are
not torch parameters (torch's dynamic int8 Linear packs them) `harness_packed_parameters` and
`harness_matmul_weights` (weights used per token).
"""

from __future__ import annotations

from typing import Any

from harness.records._schema import CostRecord


def measure_cost(model: Any, extra_flops_per_token: float = 0.0) -> CostRecord:
    from torch import nn

    seen: set[int] = set()
    parameters = weight_bytes = 0
    matmul_weights = 0
    for module in model.modules():
        own = list(module.parameters(recurse=False))
        fresh = [p for p in own if id(p) not in seen]
        seen.update(id(p) for p in own)
        stored = getattr(module, "harness_weight_bytes", None)
        for p in fresh:
            parameters += p.numel()
        if stored is not None:
            weight_bytes += stored
            parameters += getattr(module, "harness_packed_parameters", 0)
            weight_bytes += sum(p.numel() * p.element_size() for p in fresh if p is not getattr(module, "weight", None))
        else:
            weight_bytes += sum(p.numel() * p.element_size() for p in fresh)
        if isinstance(module, nn.Linear):
            matmul_weights += module.weight.numel()
        else:
            matmul_weights += getattr(module, "harness_matmul_weights", 0)
    flops = 2.0 * matmul_weights + float(extra_flops_per_token)
    return CostRecord(parameters=parameters, weight_bytes=weight_bytes, flops_per_token=flops)

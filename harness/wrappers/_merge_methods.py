"""The merge methods' tensor arithmetic, one parameter tensor at a time (no models, no files).

`base` is the tensor of the model the merge applies to, `sources` the same tensor of each source;
a task vector is a source minus the base. Every function returns a new tensor of the base's shape
and dtype, computed in float64 where it sums.

- linear: the weighted average of the sources (weights summing to 1).
- task arithmetic (Ilharco et al., 2023): base + lam * sum of the task vectors.
- TIES (Yadav et al., 2023): trim each task vector to its top `density` fraction of entries by
  magnitude (per tensor, as mergekit does; ties broken by position), elect each entry's sign as the
  sign of the trimmed vectors' sum (their summed mass), average only the trimmed entries of that
  sign (a disjoint mean), then base + lam * that mean.
- DARE (Yu et al., 2024): drop each task-vector entry with probability p, rescale the kept ones by
  1/(1-p) (the expectation is the task vector), then task arithmetic or TIES on the result.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

import torch


def tensor_sum(tensors: Iterable[torch.Tensor]) -> torch.Tensor:
    """sum() of non-empty `tensors`: its start 0 only ever meets the first tensor, never comes back."""
    return cast(torch.Tensor, sum(tensors))


def linear(sources: list[torch.Tensor], weights: list[float]) -> torch.Tensor:
    merged = tensor_sum(w * s.double() for w, s in zip(weights, sources, strict=True))
    return merged.to(sources[0].dtype)


def task_arithmetic(base: torch.Tensor, vectors: list[torch.Tensor], lam: float) -> torch.Tensor:
    return (base.double() + lam * sum(v.double() for v in vectors)).to(base.dtype)


def task_vectors(base: torch.Tensor, sources: list[torch.Tensor]) -> list[torch.Tensor]:
    return [s.double() - base.double() for s in sources]


def trim(vector: torch.Tensor, density: float) -> torch.Tensor:
    """`vector` with all but its top `density` fraction of entries by magnitude set to zero."""
    keep = round(density * vector.numel())
    if keep >= vector.numel():
        return vector.clone()
    flat = vector.flatten()
    mask = torch.zeros_like(flat, dtype=torch.bool)
    if keep > 0:
        mask[torch.topk(flat.abs(), keep, sorted=False).indices] = True
    return torch.where(mask, flat, torch.zeros_like(flat)).view_as(vector)


def elect_and_merge(trimmed: list[torch.Tensor]) -> torch.Tensor:
    """TIES' sign election by summed mass and the disjoint mean of the entries that agree with it
    (an entry no vector keeps with the elected sign stays zero)."""
    stacked = torch.stack(trimmed)
    sign = torch.sign(stacked.sum(0))
    agree = (torch.sign(stacked) == sign) & (stacked != 0)
    count = agree.sum(0)
    total = torch.where(agree, stacked, torch.zeros_like(stacked)).sum(0)
    return torch.where(count > 0, total / count.clamp(min=1), torch.zeros_like(total))


def ties(base: torch.Tensor, vectors: list[torch.Tensor], density: float, lam: float) -> torch.Tensor:
    merged = elect_and_merge([trim(v, density) for v in vectors])
    return (base.double() + lam * merged).to(base.dtype)


def drop_and_rescale(vector: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """DARE: each entry kept with probability 1-p and divided by 1-p (unbiased)."""
    if p == 0:
        return vector.clone()
    keep = torch.rand(vector.shape, generator=generator, dtype=torch.float64) >= p
    return torch.where(keep, vector / (1 - p), torch.zeros_like(vector))

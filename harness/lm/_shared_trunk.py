"""Sweeps that share work: variants that differ only in the LM head are scored in one pass.

EigenShift at several k and alpha, and the base itself, run the same decoder on the same tokens;
only the head's input projection differs. In a run, such variants of one base form a group: the
first one (the leader) is built and evaluated as usual, and on the fast log-likelihood path each
packed batch's decoder output also goes through every other member's head (a head module sharing
the base's weight, with the member's wrappers applied to it alone). Their answers go into their own
request caches, keyed exactly as their own evaluation would key them, so when a member's turn
comes, lm-eval's requests are answered from its cache and its model is never built. Anything the
shared pass did not answer (generation, perplexity, requests beyond the model's window, models the
fast path refuses) the member computes itself, as before: the sharing changes the cost, never the
answers (tests/test_shared_trunk.py compares with evaluating the members one by one).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from harness.lm._request_cache import RequestCache
from harness.variant._variant import Variant
from harness.wrappers import WRAPPERS, Applied
from harness.wrappers._cost import measure_cost
from harness.wrappers._fitting import ARTIFACT_PARAM

HEAD_ONLY = frozenset({"eigenshift"})
"""Wrappers whose `apply` touches only `model.get_output_embeddings()` (a forward pre-hook on it)."""


def plan(variants: Sequence[Variant]) -> dict[int, list[int]]:
    """Leader index -> the indices of the variants scored with it (groups of two or more)."""
    groups: dict[tuple[str, str], list[int]] = {}
    for index, variant in enumerate(variants):
        if all(name in HEAD_ONLY for name, _ in variant.spec.resolved()):
            groups.setdefault((variant.base.weights_sha256, str(variant.base.path)), []).append(index)
    return {members[0]: members[1:] for members in groups.values() if len(members) > 1}


@dataclass(frozen=True)
class Member:
    """A variant scored in its leader's pass, and the request cache its answers go to."""

    variant: Variant
    cache: RequestCache


class _HeadOnly:
    """What a head-only wrapper sees of the model: its output embeddings."""

    def __init__(self, head: Any) -> None:
        self._head = head

    def get_output_embeddings(self) -> Any:
        return self._head


def build_head(member: Variant, model: Any, tokenizer: Any) -> tuple[Any, list[tuple[str, Applied]]]:
    """A head for `member` on the leader's `model`: a new Linear sharing the weight (and bias),
    without the leader's hooks, with the member's wrappers applied; and what they did."""
    from torch import nn

    base = model.get_output_embeddings()
    head = nn.Linear(base.in_features, base.out_features, bias=base.bias is not None, device="meta")
    head.weight = base.weight
    if base.bias is not None:
        head.bias = base.bias
    applied = []
    for index, (name, params) in enumerate(member.spec.resolved()):
        if WRAPPERS.get(name).fitter is not None:
            params = {**params, ARTIFACT_PARAM: member.artifact_path(index)}
        applied.append((name, WRAPPERS.get(name).apply(_HeadOnly(head), tokenizer, params)))
    return head, applied


def member_heads(members: Sequence[Member], model: Any, tokenizer: Any) -> list[Any]:
    """Each member's head on the leader's built `model`, for the leader's scorer to score on its
    passes; each member's cost and wrapper facts go into its cache, as its own build would have
    put them (harness.engine._run reads them from there)."""
    heads = []
    for member in members:
        head, applied = build_head(member.variant, model, tokenizer)
        heads.append(head)
        extra = sum(a.extra_flops_per_token for _, a in applied)
        member.cache.put_fact("cost", measure_cost(model, extra).model_dump())
        member.cache.put_fact("applied", [{"name": name, "info": a.info} for name, a in applied])
    return heads


def store(members: Sequence[Member], keys_of: Callable[[RequestCache], list[str]], answers_by_member: Sequence[Sequence[Any]]) -> None:
    """Put the members' answers into their caches (None: not answered); `keys_of(cache)` gives the
    part's keys."""
    for member, answers in zip(members, answers_by_member, strict=True):
        keys = keys_of(member.cache)
        member.cache.put_many((k, list(a)) for k, a in zip(keys, answers, strict=True) if a is not None)

"""RegMean and RegMean++: merge each linear layer by the closed-form solution of a regression.

RegMean (Jin et al., 2023): for a linear layer y = x W^T, the merged W minimises
sum_i ||X_i W^T - X_i W_i^T||^2 / n_i over each source's n_i inputs X_i to that layer, so
W^T = (sum_i G_i)^-1 sum_i G_i W_i^T with G_i = X_i^T X_i / n_i, each source's Gram matrix divided
by its number of token positions as the paper's code and MergeBench's do (a running mean), so that
a source with more calibration tokens does not weigh more. `gram=sum` keeps the plain sums
X_i^T X_i instead: a deviation kept for comparison (harness's merge reference run used it). The
off-diagonal entries of each G_i are scaled by `alpha` (MergeBench's 0.5) before the sum, which
shrinks the solution towards the plain average (alpha 0 gives the diagonal-weighted average). The
solve is a Cholesky solve in float64; when sum_i G_i is not positive definite (an input direction
no source's data reaches) the pseudo-inverse is used instead, and counted.

RegMean++ (Nguyen et al., 2025): the same, layer by layer, with the inputs of layer l taken from the
partially merged model: source i's calibration data passes through the merged layers 0..l-1, then
through source i's own layer l, whose linear layers' inputs give G_i; layer l is merged, and the
data moves on through the merged layer l. So the merge sees how earlier merged layers change
later inputs.

Both take only the decoder layers' linear weights by regression; the layers' other parameters
(norms, biases) and the final norm are averaged; the embeddings and the LM head stay the base's
(harness.wrappers.merge).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Set
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from harness.wrappers._anatomy import decoder_of
from harness.wrappers._merge_methods import tensor_sum


def scale_off_diagonal(gram: torch.Tensor, alpha: float) -> torch.Tensor:
    return alpha * gram + (1 - alpha) * torch.diag(torch.diagonal(gram))


def solve(weights: list[torch.Tensor], grams: list[torch.Tensor], alpha: float) -> tuple[torch.Tensor, bool]:
    """The merged weight (out x in) of linear layers `weights` whose inputs' Gram matrices are
    `grams` (in x in); and whether the pseudo-inverse had to be used."""
    scaled = [scale_off_diagonal(g.double(), alpha) for g in grams]
    total = tensor_sum(scaled)
    right = tensor_sum(g @ w.double().T for g, w in zip(scaled, weights, strict=True))
    factor, info = torch.linalg.cholesky_ex(total)
    if int(info) == 0:
        merged = torch.cholesky_solve(right, factor)
        pinv = False
    else:
        merged = torch.linalg.pinv(total, hermitian=True) @ right
        pinv = True
    return merged.T.to(weights[0].dtype).contiguous(), pinv


def linear_layers(module: nn.Module) -> dict[str, nn.Linear]:
    return {name: m for name, m in module.named_modules() if isinstance(m, nn.Linear)}


@contextmanager
def gram_hooks(module: nn.Module, normalise: bool) -> Iterator[dict[str, torch.Tensor]]:
    """While inside, every forward adds X^T X of each linear layer's input (all positions: the
    calibration rows have no padding) to the yielded dict, by the layer's name; layers fed the same
    tensor (q, k, v) share one product. On leaving, if `normalise`, each sum is divided by the
    number of positions it covers (the Gram matrix per token, as the paper has it)."""
    grams: dict[str, torch.Tensor] = {}
    positions: dict[str, int] = {}
    last: list[Any] = [None, None]  # the latest input and its product (q, k and v are called in a row)
    handles = []

    def hook(name: str) -> Callable[[nn.Linear, tuple[Any, ...], Any], None]:
        def record(layer: nn.Linear, args: tuple[Any, ...], output: Any) -> None:
            x = args[0]
            if last[0] is not x:
                flat = x.detach().reshape(-1, x.shape[-1]).float()
                last[0], last[1] = x, flat.T @ flat
            grams[name] = grams[name] + last[1] if name in grams else last[1].clone()
            positions[name] = positions.get(name, 0) + x[..., 0].numel()

        return record

    for name, layer in linear_layers(module).items():
        handles.append(layer.register_forward_hook(hook(name)))
    try:
        yield grams
        if normalise:
            for name in grams:
                grams[name] = grams[name] / positions[name]
    finally:
        last[0] = last[1] = None
        for handle in handles:
            handle.remove()


def _decoder(model: nn.Module) -> Any:

    return decoder_of(model, "merge")


def _batches(rows: torch.Tensor, size: int) -> Iterator[torch.Tensor]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _merge_module(target: nn.Module, sources: list[nn.Module], grams: list[dict[str, torch.Tensor]], prefix: str, alpha: float) -> int:
    """Regress `target`'s linear weights from the sources' (Grams keyed `prefix + name`), average
    its other parameters; returns how many solves needed the pseudo-inverse."""
    linears = linear_layers(target)
    theirs = [linear_layers(s) for s in sources]
    fallbacks = 0
    for name, layer in linears.items():
        weight, pinv = solve([t[name].weight for t in theirs], [g[prefix + name] for g in grams], alpha)
        layer.weight.copy_(weight)
        fallbacks += pinv
    regressed = {f"{name}.weight" if name else "weight" for name in linears}
    _average(target, sources, skip=regressed)
    return fallbacks


def _average(target: nn.Module, sources: list[nn.Module], skip: Set[str] = frozenset()) -> None:
    theirs = [dict(s.named_parameters()) for s in sources]
    for name, parameter in target.named_parameters():
        if name not in skip:
            parameter.copy_(tensor_sum(t[name].double() for t in theirs).div(len(sources)).to(parameter.dtype))


def _output(result: Any) -> torch.Tensor:
    return result[0] if isinstance(result, tuple) else result


@torch.no_grad()
def regmean(
    model: nn.Module, models: list[nn.Module], rows: list[torch.Tensor], alpha: float, batch: int, normalise: bool
) -> dict[str, Any]:
    """RegMean: each source's Grams from its own forward passes, then every layer merged."""
    grams = []
    for source, source_rows in zip(models, rows, strict=True):
        with gram_hooks(_decoder(source).layers, normalise) as found:
            for chunk in _batches(source_rows, batch):
                _decoder(source)(input_ids=chunk, use_cache=False)
        grams.append(found)
    decoder = _decoder(model)
    fallbacks = 0
    for index, layer in enumerate(decoder.layers):
        fallbacks += _merge_module(layer, [_decoder(s).layers[index] for s in models], grams, f"{index}.", alpha)
    _average(decoder.norm, [_decoder(s).norm for s in models])
    return {"pinv_fallbacks": fallbacks}


def _layer_inputs(decoder: Any, chunk: torch.Tensor) -> tuple[torch.Tensor, list[dict[str, Any]]]:
    """The first decoder layer's input and every layer's keyword arguments (masks, rotary
    embeddings) in a forward pass of `chunk`; they do not depend on the layers' weights."""
    first: list[torch.Tensor] = []
    arguments: list[dict[str, Any]] = []

    def record(layer: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        kwargs = dict(kwargs)
        hidden = args[0] if args else kwargs.pop("hidden_states")
        if not first:
            first.append(hidden.detach())
        arguments.append(kwargs)

    handles = [layer.register_forward_pre_hook(record, with_kwargs=True) for layer in decoder.layers]
    try:
        decoder(input_ids=chunk, use_cache=False)
    finally:
        for handle in handles:
            handle.remove()
    return first[0], arguments


@torch.no_grad()
def regmean_pp(
    model: nn.Module, models: list[nn.Module], rows: list[torch.Tensor], alpha: float, batch: int, normalise: bool
) -> dict[str, Any]:
    """RegMean++: layer by layer, each source's data reaching layer l through the merged layers
    before it and through its own layer l, whose linear inputs give that layer's Grams."""
    decoder = _decoder(model)
    states = [[_layer_inputs(decoder, chunk) for chunk in _batches(source_rows, batch)] for source_rows in rows]
    fallbacks = 0
    for index, layer in enumerate(decoder.layers):
        grams = []
        for source, chunks in zip(models, states, strict=True):
            own = _decoder(source).layers[index]
            with gram_hooks(own, normalise) as found:
                for hidden, arguments in chunks:
                    own(hidden, **arguments[index])
            grams.append(found)
        fallbacks += _merge_module(layer, [_decoder(s).layers[index] for s in models], grams, "", alpha)
        states = [[(_output(layer(hidden, **arguments[index])), arguments) for hidden, arguments in chunks] for chunks in states]
    _average(decoder.norm, [_decoder(s).norm for s in models])
    return {"pinv_fallbacks": fallbacks}

"""MLP units and neurons: `aura` (Whispering Experts), `clamp`, and `top_neuron_tokens`.

In a Llama-style MLP, down_proj(act(gate_proj(x)) * up_proj(x)), a *unit* is one output of one of
its three linear layers, and a *neuron* is one input of down_proj, act(gate_proj(x))_i * up_proj(x)_i.
Layers are indexed from 0, as `skip` and `model.model.layers[i]` index them.

`aura[:mode=aura|damp|det0,k=K,n=N,tokens=T]` — AurA, Damp and Det0 from Suau et al., 2024,
"Whispering Experts: Neural Interventions for Toxicity Mitigation in Language Models" (ICML; code apple/ml-aura).
Fit, on the model as it stands when the wrapper applies:
1. the units are the outputs of gate_proj, up_proj and down_proj of every decoder layer: ml-aura
   hooks the output of every linear layer of the MLP (its GPT-2 config names mlp.c_fc and
   mlp.c_proj, GPT-2's two); for SmolLM2-135M that is 30 x (1536 + 1536 + 576) = 109,440 units;
2. the first `n` toxic and the first `n` non-toxic ToxiGen sentences (harness.wrappers.
   _concept_data; never RealToxicityPrompts) go through the model one sentence per row, as the
   tokenizer encodes them, padding masked out; each unit's response to a sentence is its maximum
   output over the sentence's tokens (ml-aura's `max` pooling);
3. a unit's score is the AUROC of its responses for toxic (positive) against non-toxic sentences,
   ties counted half (Mann-Whitney with average ranks: the value sklearn's roc_auc_score gives,
   which ml-aura calls).
The artifact holds every unit's AUROC, so one fit serves every mode and k. Apply, each unit's
output times a factor alpha:
- `mode=aura` (default): alpha = 1 - 2 (AUROC - 0.5) for each unit with AUROC > 0.5 (1 minus the
  unit's Gini coefficient), others untouched; no free parameter;
- `mode=damp`: alpha = 0.5 for the k units of highest AUROC over the whole model (ml-aura takes its
  threshold over all units, not per layer);
- `mode=det0`: alpha = 0 for those k units.
Without k, damp and det0 take every unit with AUROC > 0.5 (ml-aura's `--num-experts` unset). Ties at
the k-th AUROC are broken by position (layer, then gate, up, down, then index).
The factor is applied to the weights: a unit's output is w_j . x (+ b_j), so row j of the weight
(and b_j) times alpha gives exactly alpha times the output, the function of ml-aura's hook
`output * alpha`. In float32 (alpha w_j) . x and alpha (w_j . x) differ by rounding only, and not
at all for damp's 0.5 and det0's 0 (a power of two scales every product and partial sum exactly).
Weights rather than a hook: nothing runs at inference beyond the base, the module tree the cost
accounting reads is the one that runs, and a later wrapper (`+quantize`) sees the weights that compute.
Note that dampening gate_proj's unit dampens the activation's input, act(alpha g), not act(g), as
ml-aura's hook on the layer's output does. The applied facts: units dampened (per layer, per
projection) and their mean factor.
`tokens=T` fits on sentences of at least T tokens cut to T, so that a maximum over more tokens does
not favour the longer class; the default keeps whole sentences, as ml-aura does (it cuts only at the
model's context). docs/wrappers/units.md has what the fit finds on the embedded default.

`clamp:layer=L,neuron=I,value=V` — holds neuron I of layer L at V at every position (prompt,
generated tokens and padding alike): a forward pre-hook on down_proj sets that input to V, so the
neuron writes V W_down[:, I] into the residual stream everywhere. The other neurons keep the values
they have at that point in the base. The applied facts name the neuron's 10 top tokens as
`top_neuron_tokens` decodes them.

`top_neuron_tokens(model, tokenizer, layer, top, tokens_per_neuron, concept)` decodes a layer's
neurons through the LM head (after Davies, 2025, "Flash Interpretability: decoding specialised
feature neurons in LLMs with the LM-head", arXiv 2501.02688): neuron i's output direction, the
column W_down[:, i], is mapped through the final norm's per-dimension gain g and the unembedding,
logits_i = W_U (g * W_down[:, i]). The gain is included because it scales every direction on its
way to the head; the norm's division by the state's RMS is left out, a positive factor shared by
all tokens that changes no ranking. g is read as what the norm makes of an all-ones state (RMS 1):
its weight for Llama's RMSNorm, 1 + weight for Gemma's; the logits carry that norm's 1/sqrt(1+eps)
(1 - 5e-6 at SmolLM2's eps 1e-5). So a logit is the token's direct logit change per unit of
neuron activation in a final state of RMS 1: what clamping the neuron moves. The paper decodes the
up-projection's rows (what a neuron reads); this decodes down_proj's columns (what it writes,
hence what `clamp` changes). Without `concept` it lists neurons 0..top-1 by index, each scored by
its top token's logit; with `concept` (one token, e.g. " dog") it ranks the layer's neurons by that
token's logit. docs/wrappers/units.md shows the embedded default's " dog" neuron and what clamping
it does (the tests check both).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from harness.errors import HarnessError
from harness.wrappers import Applied, Fitter, Param, register_wrapper
from harness.wrappers import _concept_data as concept_data
from harness.wrappers._fitting import Fitted, load_tensors
from harness.wrappers.depth import decoder_of

if TYPE_CHECKING:
    from harness.models.shape import ModelShape

PROJECTIONS = ("gate_proj", "up_proj", "down_proj")
MODES = ("aura", "damp", "det0")
DAMP_FACTOR = 0.5
"""ml-aura's default `--damp-alpha`."""
BATCH = 16


def _mlps(model: Any, wrapper: str) -> list[Any]:
    """Each decoder layer's MLP, refused with one line unless it has gate, up and down projections."""
    mlps = [getattr(layer, "mlp", None) for layer in decoder_of(model, wrapper).layers]
    if not all(all(hasattr(mlp, name) for name in PROJECTIONS) for mlp in mlps):
        raise HarnessError(
            f"{wrapper}: {type(model).__name__}'s decoder layers have no gated MLP (mlp.gate_proj, up_proj, "
            "down_proj); it supports Llama-style MLPs"
        )
    return mlps


def _key(layer: int, projection: str) -> str:
    return f"layers.{layer}.{projection}"


# --- aura: fit ------------------------------------------------------------------------------------------


def auroc(responses: Any, positive: Any) -> Any:
    """Per column of `responses` (samples x units), the AUROC of its values for the rows where
    `positive` is true against the others (Mann-Whitney U / (n+ n-), average ranks for ties)."""
    import torch
    from scipy.stats import rankdata

    ranks = torch.from_numpy(rankdata(responses.double().cpu().numpy(), axis=0))
    positive = positive.cpu()
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    u = ranks[positive].sum(0) - n_pos * (n_pos + 1) / 2
    return (u / (n_pos * n_neg)).float()


def max_pooled(model: Any, encoded: list[list[int]]) -> dict[str, Any]:
    """Each unit's maximum output over each text's tokens (`encoded`: token ids per text): unit key
    -> (texts x units)."""
    import torch

    mlps = _mlps(model, "aura")
    pooled: dict[str, list[Any]] = {_key(i, p): [] for i in range(len(mlps)) for p in PROJECTIONS}
    # Similar lengths share a batch (less padding); the rows go back to the texts' order below.
    order = sorted(range(len(encoded)), key=lambda j: len(encoded[j]))
    mask: Any = None

    def keep(key: str) -> Callable[[Any, Any, Any], None]:
        def hook(module: Any, args: Any, output: Any) -> None:
            pooled[key].append(output.detach().masked_fill(~mask[..., None], -math.inf).amax(1).float().cpu())

        return hook

    handles = [getattr(mlp, p).register_forward_hook(keep(_key(i, p))) for i, mlp in enumerate(mlps) for p in PROJECTIONS]
    device = next(model.parameters()).device
    decoder = decoder_of(model, "aura")
    try:
        with torch.no_grad():
            for start in range(0, len(order), BATCH):
                rows = [encoded[j] for j in order[start : start + BATCH]]
                width = max(len(r) for r in rows)
                # Right padding: causal attention keeps every real token's outputs as without it.
                ids = torch.tensor([r + [0] * (width - len(r)) for r in rows], device=device)
                mask = torch.tensor([[True] * len(r) + [False] * (width - len(r)) for r in rows], device=device)
                decoder(input_ids=ids, attention_mask=mask.long(), use_cache=False)  # the LM head is not needed
    finally:
        for handle in handles:
            handle.remove()
    back = torch.tensor(order).argsort()
    return {key: torch.cat(chunks)[back] for key, chunks in pooled.items()}


def _sentences(tokenizer: Any, label: str, n: int | None, tokens: int | None) -> list[list[int]]:
    """The first n sentences of `label` as token ids; with `tokens`, the first n of those that have
    that many, cut to them."""
    rows = [tokenizer(text)["input_ids"] for text in concept_data.sentences(label, None if tokens else n)]
    if tokens is not None:
        rows = [row[:tokens] for row in rows if len(row) >= tokens]
        if len(rows) < 2:
            raise HarnessError(f"aura:tokens={tokens}: only {len(rows)} {label} ToxiGen sentences have that many tokens")
    return rows[:n]


def _fit_aura(model: Any, tokenizer: Any, params: dict[str, Any]) -> Fitted:
    import torch

    start = time.perf_counter()
    toxic = _sentences(tokenizer, "toxic", params["n"], params["tokens"])
    nontoxic = _sentences(tokenizer, "nontoxic", params["n"], params["tokens"])
    responses = max_pooled(model, toxic + nontoxic)
    positive = torch.tensor([True] * len(toxic) + [False] * len(nontoxic))
    scores = {key: auroc(values, positive) for key, values in responses.items()}
    every = torch.cat(list(scores.values()))
    return Fitted(
        tensors=scores,
        data=concept_data.fit_data(),
        info={
            "sentences": {"toxic": len(toxic), "nontoxic": len(nontoxic)},
            "pooling": "max over tokens" if params["tokens"] is None else f"max over the first {params['tokens']} tokens",
            "units": every.numel(),
            "units_auroc_above_half": int((every > 0.5).sum()),
            "max_auroc": round(float(every.max()), 6),
            "seconds": round(time.perf_counter() - start, 1),
        },
    )


# --- aura: apply ----------------------------------------------------------------------------------------


def factors(scores: dict[str, Any], mode: str, k: int | None) -> dict[str, Any]:
    """Each unit's factor from its AUROC (unit key -> tensor), as the module docstring gives it."""
    import torch

    if mode == "aura":
        return {key: torch.where(a > 0.5, 1 - 2 * (a - 0.5), torch.ones_like(a)) for key, a in scores.items()}
    every = torch.cat(list(scores.values()))
    if k is None:
        chosen = every > 0.5
    else:
        _units_in_range(k, every.numel())
        chosen = torch.zeros_like(every, dtype=torch.bool)
        chosen[torch.sort(every, descending=True, stable=True).indices[:k]] = True
    factor = DAMP_FACTOR if mode == "damp" else 0.0
    alpha = torch.where(chosen, torch.full_like(every, factor), torch.ones_like(every))
    return dict(zip(scores, alpha.split([a.numel() for a in scores.values()]), strict=True))


def _units_in_range(k: int, units: int) -> None:
    if k > units:
        raise HarnessError(f"aura:k={k}: the model has {units} MLP units")


def _aura_fits(params: dict[str, Any], shape: ModelShape, device: str) -> None:
    """Units are the outputs of each layer's gate, up (the MLP's width each) and down (the hidden size) projections."""
    if params["k"] is not None and shape.intermediate_size is not None:
        _units_in_range(params["k"], shape.depth * (2 * shape.intermediate_size + shape.hidden_size))


def _check_aura(values: dict[str, Any]) -> None:
    if values["mode"] == "aura" and values["k"] is not None:
        raise HarnessError(f"aura:k={values['k']}: mode=aura dampens by AUROC and takes no k (k is for damp, det0)")


@register_wrapper(
    "aura",
    doc="Whispering Experts: dampen the MLP units whose max-pooled output tells toxic from non-toxic "
    "text, each by 1-2(AUROC-0.5) (aura), or the k best by 0.5 (damp) or to 0 (det0)",
    params=(
        Param(
            "mode",
            str,
            "aura",
            "aura: units with AUROC > 0.5 times 1-2(AUROC-0.5); damp: top-k units times 0.5; det0: top-k units zeroed",
            choices=MODES,
        ),
        Param("k", int, None, "damp, det0: how many units (highest AUROC over the model); none: all with AUROC > 0.5", minimum=1),
        Param("n", int, None, "fit: toxic and non-toxic ToxiGen sentences, at most n of each; none: all", minimum=2),
        Param(
            "tokens",
            int,
            None,
            "fit: only sentences of at least this many tokens, cut to them (a max over equally many tokens); none: whole sentences",
            minimum=1,
        ),
    ),
    check=_check_aura,
    fitter=Fitter(_fit_aura, ("n", "tokens"), lambda params: concept_data.fit_data().files),
    model_check=_aura_fits,
)
def apply_aura(model: Any, tokenizer: Any, params: dict[str, Any]) -> Applied:
    import torch

    mlps = _mlps(model, "aura")
    for i, mlp in enumerate(mlps):
        for name in PROJECTIONS:
            if not isinstance(getattr(mlp, name), torch.nn.Linear):
                raise HarnessError(
                    f"aura: layer {i}'s {name} is a {type(getattr(mlp, name)).__name__}, not a float linear layer "
                    "whose rows it can scale (put aura before dynamic_int8)"
                )
    alpha = factors(load_tensors(params["artifact"]), params["mode"], params["k"])
    per_layer = [0] * len(mlps)
    per_projection = dict.fromkeys(PROJECTIONS, 0)
    chosen: list[Any] = []
    with torch.no_grad():
        for i, mlp in enumerate(mlps):
            for name in PROJECTIONS:
                linear = getattr(mlp, name)
                a = alpha[_key(i, name)].to(linear.weight)
                linear.weight.mul_(a[:, None])
                if linear.bias is not None:
                    linear.bias.mul_(a)
                touched = a[a != 1]
                per_layer[i] += touched.numel()
                per_projection[name] += touched.numel()
                chosen.append(touched)
    touched = torch.cat(chosen)
    return Applied(
        info={
            "units": sum(a.numel() for a in alpha.values()),
            "units_dampened": touched.numel(),
            "mean_factor": round(float(touched.mean()), 6) if touched.numel() else None,
            "dampened_per_layer": per_layer,
            "dampened_per_projection": per_projection,
        }
    )


# --- neurons: decoding through the LM head, and clamp ----------------------------------------------------


def _check_layer(model: Any, layer: int, what: str) -> Any:
    mlps = _mlps(model, what)
    layer_in_range(layer, len(mlps), what)
    return mlps[layer]


def layer_in_range(layer: int, depth: int, what: str) -> None:
    if not 0 <= layer < depth:
        raise HarnessError(f"{what}: layer {layer}: the model has {depth} decoder layers, 0-{depth - 1}")


def _neuron_in_range(neuron: int, layer: int, width: int) -> None:
    if neuron >= width:
        raise HarnessError(f"clamp:neuron={neuron}: layer {layer} has {width} neurons, 0-{width - 1}")


def _clamp_fits(params: dict[str, Any], shape: ModelShape, device: str) -> None:
    layer_in_range(params["layer"], shape.depth, "clamp")
    if shape.intermediate_size is not None:
        _neuron_in_range(params["neuron"], params["layer"], shape.intermediate_size)


def _decoding(model: Any, layer: int) -> tuple[Any, Any]:
    """(the neurons' output directions through the final norm's gain, g * W_down: d x neurons; W_U)."""
    import torch

    down = _mlps(model, "neurons")[layer].down_proj.weight.detach()
    norm = decoder_of(model, "neurons").norm
    with torch.no_grad():
        gain = norm(torch.ones(down.shape[0], dtype=down.dtype, device=down.device))
    return down * gain[:, None], model.get_output_embeddings().weight.detach()


def _top_tokens(tokenizer: Any, directions: Any, unembedding: Any, neurons: Any, count: int) -> list[list[str]]:
    """Each neuron's `count` tokens of highest decoded logit, decoded to text."""
    import torch

    with torch.no_grad():
        logits = directions[:, neurons].T @ unembedding.T
        best = logits.topk(min(count, logits.shape[-1]), dim=-1).indices
    return [[tokenizer.decode([int(t)]) for t in row] for row in best]


def top_neuron_tokens(
    model: Any, tokenizer: Any, layer: int, top: int, tokens_per_neuron: int = 10, concept: str | None = None
) -> list[dict[str, Any]]:
    """Neurons of MLP layer `layer` decoded through the LM head (module docstring): neurons 0..top-1,
    or with `concept` (a string the tokenizer encodes as one token) the `top` neurons whose decoded
    logit for it is highest. Each: {"index", "score" (the concept's logit, else the top token's),
    "tokens" (the top `tokens_per_neuron` tokens, decoded)}."""
    import torch

    width = _check_layer(model, layer, "neurons").down_proj.in_features
    directions, unembedding = _decoding(model, layer)
    top = min(top, width)
    with torch.no_grad():
        if concept is None:
            neurons = torch.arange(top)
            scores = (directions[:, neurons].T @ unembedding.T).max(-1).values
        else:
            ids = tokenizer.encode(concept, add_special_tokens=False)
            if len(ids) != 1:
                pieces = [tokenizer.decode([i]) for i in ids]
                raise HarnessError(f"neurons: concept {concept!r} is {len(ids)} tokens {pieces}, not one")
            scores, neurons = (unembedding[ids[0]] @ directions).topk(top)
    tokens = _top_tokens(tokenizer, directions, unembedding, neurons, tokens_per_neuron)
    return [{"index": int(n), "score": float(s), "tokens": t} for n, s, t in zip(neurons, scores, tokens, strict=True)]


def _check_clamp(values: dict[str, Any]) -> None:
    missing = [name for name in ("layer", "neuron", "value") if values[name] is None]
    if missing:
        raise HarnessError(f"clamp: needs {', '.join(f'{m}=' for m in missing)} (layer=L,neuron=I,value=V)")
    if not math.isfinite(values["value"]):
        raise HarnessError(f"clamp:value={values['value']!r}: must be a finite number")


@register_wrapper(
    "clamp",
    doc="hold one MLP neuron (an input of down_proj, act(gate) * up) at a value at every position",
    params=(
        Param("layer", int, None, "the decoder layer, from 0", minimum=0),
        Param("neuron", int, None, "the neuron's index among down_proj's inputs, from 0", minimum=0),
        Param("value", float, None, "the value it is held at"),
    ),
    check=_check_clamp,
    model_check=_clamp_fits,
)
def apply_clamp(model: Any, tokenizer: Any, params: dict[str, Any]) -> Applied:
    layer, neuron, value = params["layer"], params["neuron"], params["value"]
    down = _check_layer(model, layer, "clamp").down_proj
    _neuron_in_range(neuron, layer, down.in_features)

    def hold(module: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
        held = args[0].clone()
        held[..., neuron] = value
        return (held, *args[1:])

    down.register_forward_pre_hook(hold)
    directions, unembedding = _decoding(model, layer)
    return Applied(info={"neuron_top_tokens": _top_tokens(tokenizer, directions, unembedding, [neuron], 10)[0]})

"""Steering wrappers fitted on toxic and non-toxic text: `eigenshift` and `meandiff`.

Both fit on ToxiGen (harness.wrappers._concept_data), never on the RealToxicityPrompts they are
evaluated on, and apply as hooks: no weight of the model changes, so a tied input embedding stays
what it was without untying (and without a second copy of the head).

`eigenshift:k=K,alpha=A[,form=paper|repo]` — EigenShift (Bhattacharjee et al., 2025, "Shifting the
eigen-spectrum of the LM head to detoxify"; code B-I-T-W-I-S-E-M-I-N-D-S/EigenShift, reconstruct.py).
Fit, on the model as it stands when the wrapper applies:
1. the SVD of the LM head's weight, W = U S V^T (W is vocab x d; v_i the rows of V^T);
2. toxic states: a continuation of `tokens` tokens of each of the first `n` toxic ToxiGen prompts,
   greedy as in the authors' code (`samples=K`: K nucleus samples each, the toxicity tasks'
   protocol), scored with `scorer`. For a continuation scoring >= 0.5 the step that emitted its
   first toxic token is found from the classifier itself (the authors take the first token of the
   word a RoBERTa classifier finds most salient; our scorers give no saliency): the first prefix of
   the continuation that scores >= 0.5 ends in the word that made it toxic, and the step is the one
   that emitted that word's first token, where the model committed to the word. The LM head's input
   there (final-normed) is kept if the model's argmax at that step is that token, as the authors do;
3. non-toxic states: the LM head's input at the last position of the first `n` non-toxic prompts;
4. delta_i = mean over toxic states of v_i . h minus the same over non-toxic states.
The artifact holds V^T, S and delta for every component (and the repository's scores, below), so a
sweep over k, alpha and form reuses one fit. Apply: the k components of largest delta have their
singular values scaled by alpha. That is done as a projection of the head's input,
h <- h - sum_i (1 - alpha) (v_i . h) v_i, since W v_i = s_i u_i makes W of that equal U S' V^T h.
k defaults to the paper's ceil(0.001 d), d the hidden size (5 for Llama-2's 4096, 1 for SmolLM2's
576); alpha to the paper's 0.1.
The authors' repository scores components with `Vt.T @ h`, the i-th column of V^T rather than v_i:
`form=repo` chooses the components by that score (then scales the same way), `form=paper` (default)
by delta. Where SVD leaves each (u_i, v_i) pair's sign free, delta's sign follows v_i; both forms
rank by the signed score, as the paper and repository do. docs/wrappers/steering.md has what the
fit finds on the embedded default and what it costs in perplexity.

`meandiff:layer=L,c=C` — difference of means in the residual stream (ActAdd family; Turner et al.,
2023, "Activation addition"). Fit: the output of decoder layer L (from 0, as `skip`) over the first
`n` toxic and the first `n` non-toxic ToxiGen sentences, pooled as the mean over each sentence's
tokens but its first, then over sentences; the direction v is toxic minus non-toxic, not
normalised. The first token is left out because in SmolLM2-135M-Instruct's later layers it is an
attention sink whose state's norm is orders of magnitude above the others': pooled in, it dominated
the direction. Apply: at every position, layer L's output h becomes h - C v; C=1 moves the toxic
mean onto the non-toxic one. The fit's info records |v| and the mean norms of the pooled and the
first tokens, to read C as a relative shift. Defaults, layer 15 of 30 and C=1, keep the perplexity
cost small (docs/wrappers/steering.md has the figures).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import HarnessError
from harness.tasks.scorers import DEFAULT_SCORER, SCORERS, load_scorer
from harness.tasks.toxicity import TOXIC_THRESHOLD
from harness.wrappers import Applied, Fitter, Param, register_wrapper
from harness.wrappers import _concept_data as concept
from harness.wrappers._fitting import Fitted, load_tensors, read_sidecar
from harness.wrappers.depth import decoder_of

if TYPE_CHECKING:
    import torch

    from harness.models.shape import ModelShape

FORMS = ("paper", "repo")
PAPER_K_SHARE = 0.001
"""The paper's k = ceil(0.001 d) (the repository's `percentile = 0.999`)."""
TOP_P = 0.95
BATCH = 16
# The parameters each fit depends on (the others only apply the artifact).
EIGENSHIFT_FIT = ("n", "samples", "tokens", "seed", "scorer")
MEANDIFF_FIT = ("layer", "n")


def _data_files(params: dict[str, Any]) -> dict[str, str]:
    return concept.fit_data().files


def _artifact(params: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The artifact's tensors and fit facts (harness.variant._variant checked it against the model string)."""
    path = Path(params["artifact"])
    return load_tensors(path), read_sidecar(path)["info"]


# --- model plumbing shared by both fits -----------------------------------------------------------


@contextmanager
def _left_padding(tokenizer: Any) -> Iterator[Any]:
    """The tokenizer, padding on the left (generation appends on the right) with a pad token, as it
    was afterwards."""
    side, pad = tokenizer.padding_side, tokenizer.pad_token
    tokenizer.padding_side = "left"
    if pad is None:
        tokenizer.pad_token = tokenizer.eos_token
    try:
        yield tokenizer
    finally:
        tokenizer.padding_side, tokenizer.pad_token = side, pad


def _batches(items: list[Any], size: int = BATCH) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _encode(model: Any, tokenizer: Any, texts: list[str]) -> dict[str, Any]:
    """Left-padded ids with a mask and positions that ignore the padding."""
    with _left_padding(tokenizer) as tok:
        batch = tok(texts, return_tensors="pt", padding=True)
    mask = batch["attention_mask"]
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return {
        "input_ids": batch["input_ids"].to(model.device),
        "attention_mask": mask.to(model.device),
        "position_ids": positions.to(model.device),
    }


@contextmanager
def _capture(module: Any) -> Iterator[list[Any]]:
    """Each call's (input, output) of a module, while inside; the input as the module saw it (after
    any pre-hook of an earlier wrapper)."""
    seen: list[Any] = []
    handle = module.register_forward_hook(lambda m, args, out: seen.append((args[0].detach(), out.detach())))
    try:
        yield seen
    finally:
        handle.remove()


# --- eigenshift: fit ------------------------------------------------------------------------------


def first_toxic_step(prefixes: list[str], scores: list[float]) -> int | None:
    """The step that emitted the first token of the word that made a continuation toxic.

    `prefixes[j]` is the text of the continuation's tokens 0..j and `scores[j]` its toxicity. The
    first prefix scoring >= TOXIC_THRESHOLD ends in that word; the answer is the first step whose
    prefix reaches into the word. None if no prefix is toxic."""
    crossing = next((j for j, score in enumerate(scores) if score >= TOXIC_THRESHOLD), None)
    if crossing is None:
        return None
    text = prefixes[crossing].rstrip()
    word = re.search(r"\S+$", text)
    if word is None:
        return crossing
    return next(j for j in range(crossing + 1) if len(prefixes[j].rstrip()) > word.start())


def _stop_ids(model: Any, tokenizer: Any) -> set[int]:
    eos = model.generation_config.eos_token_id
    ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    return ids | ({tokenizer.pad_token_id} if tokenizer.pad_token_id is not None else set())


def _generate(
    model: Any, tokenizer: Any, head: Any, prompts: list[str], tokens: int, sample: bool
) -> list[tuple[list[int], torch.Tensor, torch.Tensor]]:
    """One continuation per prompt (greedy, or sampled as the toxicity tasks do): its token ids (to
    the first stop token), and per step the head's input and the argmax of its logits."""
    import torch

    stop = _stop_ids(model, tokenizer)
    out: list[tuple[list[int], Any, Any]] = []
    for batch in _batches(prompts):
        encoded = _encode(model, tokenizer, batch)
        encoded.pop("position_ids")  # generate derives them from the mask
        with _capture(head) as seen:
            decoding = {"do_sample": True, "top_p": TOP_P, "temperature": 1.0} if sample else {"do_sample": False}
            ids = model.generate(**encoded, **decoding, max_new_tokens=tokens, pad_token_id=tokenizer.pad_token_id)
        # One head call per step, each on the last position only (generate keeps one logit row).
        states = torch.stack([h[:, -1] for h, _ in seen], dim=1).float().cpu()
        argmax = torch.stack([o[:, -1].argmax(-1) for _, o in seen], dim=1).cpu()
        generated = ids[:, encoded["input_ids"].shape[1] :].cpu()
        for row in range(len(batch)):
            continuation = generated[row].tolist()
            end = next((j for j, t in enumerate(continuation) if t in stop), len(continuation))
            out.append((continuation[:end], states[row], argmax[row]))
    return out


def _toxic_states(model: Any, tokenizer: Any, head: Any, params: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    import torch

    scorer = load_scorer(params["scorer"])
    samples = params["samples"]
    prompts = [p for p in concept.prompts("toxic", params["n"]) for _ in range(max(samples, 1))]
    runs = _generate(model, tokenizer, head, prompts, params["tokens"], sample=samples > 0)
    texts = [tokenizer.decode(ids, skip_special_tokens=True) for ids, _, _ in runs]
    toxic = [r for r, s in zip(runs, scorer.score(texts), strict=True) if s >= TOXIC_THRESHOLD]
    prefixes = [[tokenizer.decode(ids[: j + 1], skip_special_tokens=True) for j in range(len(ids))] for ids, _, _ in toxic]
    flat = scorer.score([p for group in prefixes for p in group])
    kept, missed = [], 0
    for (ids, states, argmax), group in zip(toxic, prefixes, strict=True):
        scores, flat = flat[: len(group)], flat[len(group) :]
        step = first_toxic_step(group, scores)
        if step is not None and int(argmax[step]) == ids[step]:
            kept.append(states[step])
        else:
            missed += 1
    if not kept:
        raise HarnessError(
            f"eigenshift: none of {len(runs)} continuations of toxic prompts gave a toxic state "
            f"({len(toxic)} scored toxic); raise n or samples"
        )
    facts = {
        "continuations": len(runs),
        "toxic_continuations": len(toxic),
        "toxic_states": len(kept),
        "dropped_argmax_differs": missed,
        "scorer": scorer.identity.name,
    }
    return torch.stack(kept), facts


def _last_prompt_states(model: Any, tokenizer: Any, head: Any, prompts: list[str]) -> Any:
    import torch

    states = []
    for batch in _batches(prompts):
        with _capture(head) as seen:
            model(**_encode(model, tokenizer, batch), logits_to_keep=1)
        states.append(seen[0][0][:, -1].float().cpu())
    return torch.cat(states)


def fit_eigenshift(model: Any, tokenizer: Any, params: dict[str, Any]) -> Fitted:
    import torch

    head = model.get_output_embeddings()
    with torch.no_grad(), torch.random.fork_rng():
        torch.manual_seed(params["seed"])
        toxic, facts = _toxic_states(model, tokenizer, head, params)
        nontoxic = _last_prompt_states(model, tokenizer, head, concept.prompts("nontoxic", params["n"]))
        _, s, vt = torch.linalg.svd(head.weight.detach().float().cpu(), full_matrices=False)
    gap = toxic.mean(0) - nontoxic.mean(0)
    tensors = {"vt": vt, "s": s, "delta": vt @ gap, "delta_repo": vt.T @ gap}
    return Fitted(tensors=tensors, data=concept.fit_data(), info={**facts, "nontoxic_states": len(nontoxic)})


# --- eigenshift: apply ----------------------------------------------------------------------------


def _check_k(params: dict[str, Any], d: int) -> int:
    """The components scaled, refused beyond the LM head's `d` (its input width, the hidden size)."""
    k = params["k"] if params["k"] is not None else math.ceil(PAPER_K_SHARE * d)
    if k > d:
        raise HarnessError(f"eigenshift:k={k}: the LM head has {d} singular components")
    return k


def _eigenshift_fits(params: dict[str, Any], shape: ModelShape, device: str) -> None:
    _check_k(params, shape.hidden_size)


@register_wrapper(
    "eigenshift",
    doc="EigenShift: scale by alpha the k LM-head singular values whose right vectors separate toxic "
    "from non-toxic final states most (fitted on ToxiGen)",
    params=(
        Param("k", int, None, "components to scale; none: the paper's ceil(0.001 x hidden size)", minimum=1),
        Param("alpha", float, 0.1, "their singular values' factor (1: the base, 0: removed)", minimum=0.0),
        Param("form", str, "paper", "choose components by v_i . h (paper) or the repository's Vt.T @ h", choices=FORMS),
        Param("n", int, 128, "fit: toxic prompts continued, and non-toxic prompts read", minimum=1),
        Param(
            "samples",
            int,
            0,
            "fit: continuations per toxic prompt: 0 one greedy (the authors' code), "
            "else that many nucleus samples (the toxicity tasks' protocol)",
            minimum=0,
        ),
        Param("tokens", int, 20, "fit: new tokens per continuation", minimum=1),
        Param("seed", int, 0, "fit: sampling seed (with samples > 0)"),
        Param("scorer", str, DEFAULT_SCORER, "fit: toxicity scorer of the continuations", choices=tuple(SCORERS.names())),
    ),
    fitter=Fitter(fit_eigenshift, EIGENSHIFT_FIT, _data_files),
    model_check=_eigenshift_fits,
)
def apply_eigenshift(model: Any, tokenizer: Any, params: dict[str, Any]) -> Applied:
    import torch

    tensors, fit_info = _artifact(params)
    vt, delta = tensors["vt"], tensors["delta"]
    head = model.get_output_embeddings()
    d = vt.shape[1]
    if head.in_features != d:
        raise HarnessError(f"eigenshift: the artifact is for hidden size {d}, the LM head takes {head.in_features}")
    k = _check_k(params, d)
    score = delta if params["form"] == "paper" else tensors["delta_repo"]
    chosen = torch.argsort(score, descending=True, stable=True)[:k]
    basis = vt[chosen].to(device=head.weight.device, dtype=head.weight.dtype)
    keep = 1.0 - params["alpha"]

    def project(module: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
        h = args[0]
        return (h - keep * ((h @ basis.T) @ basis), *args[1:])

    head.register_forward_pre_hook(project)
    return Applied(
        info={
            "k": k,
            "components": chosen.tolist(),
            "delta": [round(float(delta[i]), 6) for i in chosen],
            "delta_repo": [round(float(tensors["delta_repo"][i]), 6) for i in chosen],
            "singular_values": [round(float(tensors["s"][i]), 6) for i in chosen],
            "fit": fit_info,
        },
        extra_flops_per_token=4.0 * k * d,  # two k x d products per token
    )


# --- meandiff -------------------------------------------------------------------------------------


def _layer(model: Any, index: int, wrapper: str) -> Any:
    layers = decoder_of(model, wrapper).layers
    _check_layer(index, len(layers), wrapper)
    return layers[index]


def _check_layer(index: int, depth: int, wrapper: str) -> None:
    if index >= depth:
        raise HarnessError(f"{wrapper}:layer={index}: the model has {depth} decoder layers, 0-{depth - 1}")


def _first(output: Any) -> Any:
    return output[0] if isinstance(output, tuple) else output


def _mean_state(model: Any, tokenizer: Any, layer: Any, texts: list[str]) -> tuple[Any, float, float]:
    """Mean over texts of each text's mean token state at `layer`'s output, its first token left out,
    with the mean norm of the tokens pooled and of the first tokens."""
    import torch

    per_text, norms, first_norms = [], [], []
    for batch in _batches(texts):
        encoded = _encode(model, tokenizer, batch)
        with _capture(layer) as seen:
            model(**encoded, logits_to_keep=1)
        states = _first(seen[0][1]).float().cpu()
        count = encoded["attention_mask"].cpu().cumsum(1)  # left padding: 0 on pads, 1 on the first token
        pooled = (count > 1).unsqueeze(-1).float()
        per_text.append((states * pooled).sum(1) / pooled.sum(1).clamp(min=1))
        norms.append(states.norm(dim=-1)[count > 1])
        first_norms.append(states.norm(dim=-1)[count == 1])
    return torch.cat(per_text).mean(0), float(torch.cat(norms).mean()), float(torch.cat(first_norms).mean())


def fit_meandiff(model: Any, tokenizer: Any, params: dict[str, Any]) -> Fitted:
    import torch

    layer = _layer(model, params["layer"], "meandiff")
    with torch.no_grad():
        toxic, *toxic_norms = _mean_state(model, tokenizer, layer, concept.sentences("toxic", params["n"]))
        nontoxic, *nontoxic_norms = _mean_state(model, tokenizer, layer, concept.sentences("nontoxic", params["n"]))
    direction = toxic - nontoxic
    info = {
        "direction_norm": round(float(direction.norm()), 6),
        "mean_token_norm": round((toxic_norms[0] + nontoxic_norms[0]) / 2, 6),
        "mean_first_token_norm": round((toxic_norms[1] + nontoxic_norms[1]) / 2, 6),
    }
    return Fitted(tensors={"direction": direction}, data=concept.fit_data(), info=info)


@register_wrapper(
    "meandiff",
    doc="subtract c x (mean toxic - mean non-toxic ToxiGen sentence state) from a decoder layer's output at every position",
    params=(
        Param("layer", int, 15, "decoder layer (from 0) whose output is steered", minimum=0),
        Param("c", float, 1.0, "strength: multiples of the (unnormalised) mean difference", minimum=0.0),
        Param("n", int, None, "fit: sentences per class (none: all)", minimum=1),
    ),
    fitter=Fitter(fit_meandiff, MEANDIFF_FIT, _data_files),
    model_check=lambda params, shape, device: _check_layer(params["layer"], shape.depth, "meandiff"),
)
def apply_meandiff(model: Any, tokenizer: Any, params: dict[str, Any]) -> Applied:
    layer = _layer(model, params["layer"], "meandiff")
    tensors, fit_info = _artifact(params)
    direction = tensors["direction"]
    shift = (params["c"] * direction).to(device=next(layer.parameters()).device, dtype=next(layer.parameters()).dtype)

    def subtract(module: Any, args: Any, output: Any) -> Any:
        if isinstance(output, tuple):
            return (output[0] - shift, *output[1:])
        return output - shift

    layer.register_forward_hook(subtract)
    info = {"layer": params["layer"], "shift_norm": round(float(shift.float().norm()), 6), "fit": fit_info}
    return Applied(info=info, extra_flops_per_token=float(direction.numel()))

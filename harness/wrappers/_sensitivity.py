"""Per-layer sensitivity to quantization, and the choice of a bit width per layer under an average
budget (the CPTQuant idea: spend bits where the model is sensitive).

Calibration text: the first `CALIBRATION_TOKENS[score]` tokens of WikiText-2's validation split
(`perplexity/wikitext-2/valid.txt` in the data directory; evaluation's `wikitext2_ppl` reads
test.txt), tokenized without special tokens and cut into windows of `WINDOW` tokens. Its sha256
enters the variant's identity.

Scores, per decoder layer l:
- pruning: perplexity on the calibration text with only layer l's linear weights magnitude-pruned
  (the smallest `PRUNE_FRACTION` of each weight matrix by |w| set to zero), minus the unpruned
  perplexity. One number per layer; its estimated damage at width b is max(score, 0) * 2^-b (the
  RTN step, hence the error, halves with each added bit; a layer whose pruning does not raise the
  perplexity counts as insensitive).
- taylor: sum over layer l's linear weights of |dL/dw * (Q_b(w) - w)|, the first-order change of
  the calibration loss L when the layer is quantized at width b (with the wrapper's group and
  symmetry); computed for every candidate width b, so the damage is measured, not modelled.

Choice (`choose_widths`): the widths that minimise the total estimated damage over the layers
subject to sum(width_l * n_l) <= budget * sum(n_l) (n_l: layer l's linear weights), found exactly
by dynamic programming over the bits used (a multiple-choice knapsack; with equal layers, as in
Llama, at most 8 * n_layers states). Maximising the sensitivity kept is the same thing. Among equal
totals the one using fewer bits wins, then the one found first (narrower widths in lower layers).
Should the layers' sizes make the table too large (over ~10^7 cells), a greedy pass replaces it:
from every layer at the narrowest width, repeatedly widen the layer by one step where it removes
the most damage per added bit, while the budget allows. Deterministic for given scores.

Scores are cached in `<cache>/quantize/<sha256 of the key>.json`; the key holds a sha256 of the
model's parameters and buffers as they are when `quantize` runs, the score, what it depends on,
the calibration text's sha256 and token count, the source digest of this module (with the
quantizer it imports) and the library versions. Each entry carries a sha256 of its content,
checked on read: an entry that fails is reported in one line and scored again. The choice itself
is cheap and is recomputed, so a sweep over budgets scores the model once.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from harness._util.code import code_digest, library_versions
from harness._util.files import atomic_write_text, say, sha256_file, sha256_json
from harness._util.paths import cache_dir
from harness.errors import HarnessError
from harness.tasks import data

CALIBRATION_FILE = "perplexity/wikitext-2/valid.txt"
CALIBRATION_TOKENS = {"pruning": 512, "taylor": 2048}
"""Sized so each score takes under a minute of one CPU core on the embedded default
(docs/wrappers/quantize.md has the timings): pruning runs 1 + n_layers forward passes over its
tokens, taylor one forward and backward pass plus the quantization error at each candidate width."""
WINDOW = 256
PRUNE_FRACTION = 0.5
SCORING_CODE = "harness.wrappers._sensitivity"
"""The module whose source (with the quantizer it imports) keys the cached scores."""


def calibration_path() -> Path:
    directory = data.data_dir()
    if directory is None:
        raise HarnessError(f"quantize:budget needs its calibration text {CALIBRATION_FILE}: no data directory (set HARNESS_DATA_DIR)")
    path = directory / CALIBRATION_FILE
    if not path.is_file():
        raise HarnessError(f"quantize:budget needs its calibration text: {path} is missing")
    return path


def calibration_sha256() -> str:
    return sha256_file(calibration_path())


def calibration_windows(tokenizer: Any, n_tokens: int) -> list[list[int]]:
    """The first `n_tokens` tokens of the calibration text, in windows of WINDOW tokens."""
    text = calibration_path().read_text(encoding="utf-8")
    chars = 8 * n_tokens
    while True:
        ids = list(tokenizer.encode(text[:chars], add_special_tokens=False))
        if len(ids) > n_tokens + 16 or chars >= len(text):
            break
        chars *= 2
    if len(ids) < n_tokens:
        raise HarnessError(f"quantize: the calibration text has {len(ids)} tokens, fewer than the {n_tokens} needed")
    ids = ids[:n_tokens]
    return [ids[i : i + WINDOW] for i in range(0, n_tokens, WINDOW)]


def model_state_sha256(model: Any) -> str:
    """sha256 of every parameter and buffer (name, dtype, shape, bytes), a tied one once."""
    import hashlib

    import torch

    digest = hashlib.sha256()
    seen: set[int] = set()
    tensors = [*model.named_parameters(remove_duplicate=False), *model.named_buffers(remove_duplicate=False)]
    for name, tensor in sorted(tensors, key=lambda item: item[0]):
        if id(tensor) in seen:
            continue
        seen.add(id(tensor))
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{value.dtype}|{tuple(value.shape)}\n".encode())
        digest.update(value.view(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def _device(model: Any) -> Any:
    return next(model.parameters()).device


def _mean_nll(model: Any, windows: list[list[int]]) -> float:
    import torch

    device = _device(model)
    total = 0.0
    with torch.no_grad():
        for window in windows:
            ids = torch.tensor([window], device=device)
            total += float(model(input_ids=ids, labels=ids, use_cache=False).loss)
    return total / len(windows)


def pruning_scores(model: Any, linears: list[list[tuple[str, Any]]], windows: list[list[int]]) -> dict[str, Any]:
    """Perplexity increase per layer when only that layer's linear weights are magnitude-pruned."""
    import torch

    base = math.exp(_mean_nll(model, windows))
    scores = []
    for layer in linears:
        saved = [(m.weight, m.weight.detach().clone()) for _, m in layer]
        try:
            with torch.no_grad():
                for weight, original in saved:
                    flat = weight.view(-1)
                    k = int(flat.numel() * PRUNE_FRACTION)
                    flat[torch.argsort(original.abs().view(-1), stable=True)[:k]] = 0.0
            scores.append(math.exp(_mean_nll(model, windows)) - base)
        finally:
            with torch.no_grad():
                for weight, original in saved:
                    weight.copy_(original)
    return {"base_perplexity": base, "scores": scores}


def taylor_scores(
    model: Any, linears: list[list[tuple[str, Any]]], windows: list[list[int]], widths: tuple[int, ...], group: int, sym: bool
) -> dict[str, Any]:
    """sum |gradient x quantization error| of each layer's linear weights, per width."""
    import torch

    from harness.wrappers._quant import fake_quant

    device = _device(model)
    flags = {id(p): (p, p.requires_grad) for p in model.parameters()}
    targets = [m.weight for layer in linears for _, m in layer]
    try:
        for p, _ in flags.values():
            p.requires_grad_(False)
            p.grad = None
        for weight in targets:
            weight.requires_grad_(True)
        loss_total = 0.0
        with torch.enable_grad():
            for window in windows:
                ids = torch.tensor([window], device=device)
                loss = model(input_ids=ids, labels=ids, use_cache=False).loss / len(windows)
                loss.backward()
                loss_total += float(loss.detach())
        scores = []
        with torch.no_grad():
            for layer in linears:
                per_width = {}
                for bits in widths:
                    per_width[str(bits)] = float(
                        sum(
                            (m.weight.grad * (fake_quant(m.weight, bits, group, sym) - m.weight)).abs().sum(dtype=torch.float64)
                            for _, m in layer
                        )
                    )
                scores.append(per_width)
    finally:
        for p, flag in flags.values():
            p.grad = None
            p.requires_grad_(flag)
    return {"base_perplexity": math.exp(loss_total), "scores": scores}


def layer_sensitivity(
    model: Any, tokenizer: Any, linears: list[list[tuple[str, Any]]], score: str, widths: tuple[int, ...], group: int, sym: bool
) -> dict[str, Any]:
    """Scores per layer (cached on disk), with the facts the run record keeps."""
    n_tokens = CALIBRATION_TOKENS[score]
    key = {
        "code": code_digest(SCORING_CODE),
        "libraries": library_versions(),
        "model": model_state_sha256(model),
        "score": score,
        "calibration": {"file": CALIBRATION_FILE, "sha256": calibration_sha256(), "tokens": n_tokens, "window": WINDOW},
        **({"widths": list(widths), "group": group, "sym": sym} if score == "taylor" else {"prune_fraction": PRUNE_FRACTION}),
    }
    path = cache_dir() / "quantize" / f"{sha256_json(key)}.json"
    if path.exists():
        problem = entry_problem(path)
        if problem is None:
            cached = json.loads(path.read_text(encoding="utf-8"))
            if cached["key"] == key and len(cached["scores"]) == len(linears):
                cached.pop("sha256")
                return {**cached, "cached": True}
            problem = "it holds another key's scores"
        say(f"quantize sensitivity cache {path.name[:16]}: {problem}; scored again")
    start = time.perf_counter()
    windows = calibration_windows(tokenizer, n_tokens)
    result = pruning_scores(model, linears, windows) if score == "pruning" else taylor_scores(model, linears, windows, widths, group, sym)
    entry = {"key": key, **result, "seconds": round(time.perf_counter() - start, 3)}
    atomic_write_text(path, json.dumps({**entry, "sha256": sha256_json(entry)}, indent=1) + "\n")
    return {**entry, "cached": False}


def entry_problem(path: Path) -> str | None:
    """None when the cached scores at `path` are readable and match the sha256 they carry."""
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
        recorded = content.pop("sha256")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return "unreadable, or without its sha256 (written by an older harness)"
    return None if recorded == sha256_json(content) else "its content does not match its sha256"


def damage(score: str, scores: list[Any], widths: tuple[int, ...]) -> list[dict[int, float]]:
    """Estimated damage of each layer at each width."""
    if score == "taylor":
        return [{b: float(s[str(b)]) for b in widths} for s in scores]
    return [{b: max(float(s), 0.0) * 2.0**-b for b in widths} for s in scores]


def choose_widths(costs: list[dict[int, float]], numels: list[int], widths: tuple[int, ...], budget: float) -> list[int]:
    """Per-layer widths minimising the summed damage with the weight-weighted average within `budget`."""
    order = sorted(widths)
    unit = math.gcd(*numels)
    sizes = [n // unit for n in numels]
    capacity = math.floor(budget * sum(sizes) + 1e-9)
    if capacity * len(order) * len(costs) > 10**7:
        return _greedy(costs, numels, order, budget)
    # used bits -> (damage, widths so far); each layer takes exactly one width
    table: dict[int, tuple[float, list[int]]] = {0: (0.0, [])}
    for cost, size in zip(costs, sizes, strict=True):
        following: dict[int, tuple[float, list[int]]] = {}
        for used in sorted(table):
            damage_so_far, chosen = table[used]
            for width in order:
                total = used + width * size
                if total > capacity:
                    break
                candidate = damage_so_far + cost[width]
                if total not in following or candidate < following[total][0]:
                    following[total] = (candidate, [*chosen, width])
        table = following
    best = min(table, key=lambda used: (table[used][0], used))
    return table[best][1]


def _greedy(costs: list[dict[int, float]], numels: list[int], order: list[int], budget: float) -> list[int]:
    chosen = [order[0]] * len(costs)
    allowed = budget * sum(numels) * (1 + 1e-12)
    used = float(sum(b * n for b, n in zip(chosen, numels, strict=True)))
    while True:
        best: tuple[float, int] | None = None
        for layer, (cost, numel) in enumerate(zip(costs, numels, strict=True)):
            if chosen[layer] == order[-1]:
                continue
            current, wider = chosen[layer], order[order.index(chosen[layer]) + 1]
            extra = (wider - current) * numel
            if used + extra <= allowed and (best is None or (cost[current] - cost[wider]) / extra > best[0]):
                best = ((cost[current] - cost[wider]) / extra, layer)
        if best is None:
            return chosen
        layer = best[1]
        wider = order[order.index(chosen[layer]) + 1]
        used += (wider - chosen[layer]) * numels[layer]
        chosen[layer] = wider

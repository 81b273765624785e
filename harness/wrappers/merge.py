"""Merged variants: `merge:method=METHOD,sources=A;B[,...]` combines fine-tunes of one base.

The model the wrapper applies to is the base: task vectors are each source minus it, and
embeddings and the LM head come from it under RegMean. Sources are model strings (`expert:NAME`
for harness's own experts, harness.models.experts; a catalog name, `hf:ORG/NAME` or a model folder) with
the base's architecture; the first parameter whose name or shape differs ends the run in one line.

Methods (tensor arithmetic in harness.wrappers._merge_methods, RegMean in _merge_regmean):
- `linear`: the weighted average of the sources (`weights=0.5;0.5`, default equal);
- `task_arithmetic`: base + lam * sum of task vectors (lam default 0.4, MergeBench's);
- `ties`: trim each task vector to its top `density` (0.2) by magnitude per tensor, elect signs by
  summed mass, disjoint mean; base + lam * that (lam default 1, the TIES paper's);
- `dare`: drop task-vector entries with probability `p` (0.9, the DARE paper's), rescale by 1/(1-p),
  seeded by `seed`; then `dare_base=task_arithmetic` (default) or `ties` on the result;
- `regmean`, `regmean_pp`: per linear layer of the decoder, the regression merge on each source's
  own data (`calibration_examples`, default 256, packed into 128-token rows), each source's Gram
  matrices divided by its token count (`gram=mean`, the paper's and MergeBench's; `gram=sum`, the
  plain sums, is a deviation kept for comparison), off-diagonals scaled by `alpha` (0.5,
  MergeBench's); RegMean++ layer by layer through the partially merged model. Other decoder
  parameters averaged; embeddings and head the base's.

Identity: the variant's intervention record lists each source's weight sha256 and, for RegMean,
the sha256 of each source's calibration texts; with the method's parameters (DARE's seed among
them) that is the merge's identity. The merged weights are cached under it (the sources and the
calibration texts by their sha256, not their names), the base's parameters, the source digest of
the merge modules and the library versions (`<cache>/merges/<sha256>.safetensors`, its facts and
the weights' sha256 in `<sha256>.safetensors.json`): a second run, or another task list, loads
them instead of merging again, once their sha256 matches the facts' (a file that does not is
reported in one line and merged again). The record's `applied` info holds the seconds the merge
took when it was made.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness._util.code import code_digest, library_versions
from harness._util.files import atomic_write_text, file_lock, fresh_sha256, say, sha256_file, sha256_json
from harness._util.paths import cache_dir
from harness.errors import HarnessError
from harness.models import is_syntactically_known
from harness.wrappers import Applied, Param, register_wrapper
from harness.wrappers._merge_sources import calibration_texts, load_weights, resolve_sources, split_list, texts_sha256

if TYPE_CHECKING:
    from harness.models.shape import ModelShape

METHODS = ("linear", "task_arithmetic", "ties", "dare", "regmean", "regmean_pp")
REGMEAN = ("regmean", "regmean_pp")
GRAMS = ("mean", "sum")
DEFAULT_LAM = {"task_arithmetic": 0.4, "ties": 1.0}
ROW_TOKENS = 128
CALIBRATION_BATCH = 8
MERGE_CODE = ("harness.wrappers.merge",)
"""The module whose source (with the merge methods and RegMean it imports) keys the merged weights."""


def _check(params: dict[str, Any]) -> None:
    if params["method"] is None:
        raise HarnessError(f"merge needs method=..., one of {', '.join(METHODS)}")
    sources = split_list(params["sources"])
    if len(sources) < 2 or not all(sources):
        raise HarnessError("merge:sources: give two or more model strings separated by ';' (expert:arithmetic;expert:xcopa)")

    for source in sources:
        is_syntactically_known(source)
    if params["weights"] is not None:
        if params["method"] != "linear":
            raise HarnessError("merge:weights is for method=linear")
        weights = _weights(params)
        if len(weights) != len(sources):
            raise HarnessError(f"merge:weights: {len(weights)} weights for {len(sources)} sources")
    calibration = split_list(params["calibration"])
    if calibration and len(calibration) != len(sources):
        raise HarnessError(f"merge:calibration: {len(calibration)} entries for {len(sources)} sources (leave an expert's empty)")


def _weights(params: dict[str, Any]) -> list[float]:
    sources = split_list(params["sources"])
    if params["weights"] is None:
        return [1 / len(sources)] * len(sources)
    try:
        weights = [float(w) for w in split_list(params["weights"])]
    except ValueError:
        raise HarnessError(f"merge:weights={params['weights']!r}: expected numbers separated by ';'") from None
    if abs(sum(weights) - 1) > 1e-6:
        raise HarnessError(f"merge:weights={params['weights']!r}: they must sum to 1")
    return weights


def _lam(params: dict[str, Any]) -> float:
    if params["lam"] is not None:
        return params["lam"]
    method = params["dare_base"] if params["method"] == "dare" else params["method"]
    return DEFAULT_LAM[method]


def _calibration(params: dict[str, Any]) -> list[list[str]]:
    sources = split_list(params["sources"])
    files = split_list(params["calibration"]) or [""] * len(sources)
    return [calibration_texts(s, f, params["calibration_examples"]) for s, f in zip(sources, files, strict=True)]


def _artifacts(params: dict[str, Any]) -> dict[str, str]:
    """Each source's weight sha256 and, for RegMean, its calibration texts' sha256 (resolving an
    expert source builds it if it is not in the cache)."""
    found = {f"source{i}:{s.name}": s.model.weights_sha256 for i, s in enumerate(resolve_sources(params["sources"]))}
    if params["method"] in REGMEAN:
        found.update({f"calibration{i}": texts_sha256(t) for i, t in enumerate(_calibration(params))})
    return found


def _sources_fit(params: dict[str, Any], shape: ModelShape, device: str) -> None:
    """Each source has the model's shape (read from its files: an expert is not built for this)."""
    from harness.models.shape import model_shape

    for source in split_list(params["sources"]):
        theirs = model_shape(source)
        if (theirs.architecture, theirs.depth, theirs.hidden_size, theirs.intermediate_size, theirs.vocab_size) != (
            shape.architecture,
            shape.depth,
            shape.hidden_size,
            shape.intermediate_size,
            shape.vocab_size,
        ):
            raise HarnessError(
                f"merge: source {source} is a {theirs.architecture} of {theirs.depth} layers and hidden size {theirs.hidden_size},"
                f" the model a {shape.architecture} of {shape.depth} layers and hidden size {shape.hidden_size} (architectures differ)"
            )


@register_wrapper(
    "merge",
    doc="merge fine-tunes of the base: linear, task_arithmetic, ties, dare, regmean, regmean_pp",
    params=(
        Param("method", str, None, "the merge method", choices=METHODS),
        Param("sources", str, None, "model strings separated by ';' (expert:NAME, a catalog name, hf:ORG/NAME, a folder)"),
        Param("weights", str, None, "linear: weights separated by ';' summing to 1 (none: equal)"),
        Param("lam", float, None, "scale of the merged task vector (none: 0.4 task arithmetic, 1 TIES)"),
        Param("density", float, 0.2, "ties: the fraction of each task vector kept, by magnitude", minimum=0.0, maximum=1.0),
        Param("p", float, 0.9, "dare: drop probability", minimum=0.0, maximum=0.999),
        Param("dare_base", str, "task_arithmetic", "dare: what merges the rescaled vectors", choices=("task_arithmetic", "ties")),
        Param("seed", int, 0, "dare: the seed of the drop masks"),
        Param("alpha", float, 0.5, "regmean: scale of the Gram matrices' off-diagonal entries", minimum=0.0, maximum=1.0),
        Param(
            "gram",
            str,
            "mean",
            "regmean: each source's X^T X divided by its token count (mean: the paper's) or not (sum: a deviation kept for comparison)",
            choices=GRAMS,
        ),
        Param("calibration_examples", int, 256, "regmean: examples of each source's data", minimum=1),
        Param("calibration", str, None, "regmean: a text file per source (one example per line), ';'-separated; empty for an expert"),
    ),
    check=_check,
    artifacts=_artifacts,
    model_check=_sources_fit,
)
def apply_merge(model: Any, tokenizer: Any, params: dict[str, Any]) -> Applied:
    from safetensors.torch import load_model

    artifacts = _artifacts(params)
    key = sha256_json(
        {
            # The sources and calibration files by content, in order, not by name: no path in the key.
            "params": {k: str(v) for k, v in params.items() if k not in ("sources", "calibration")},
            "inputs": list(artifacts.values()),
            "base": _fingerprint(model),
            "code": code_digest(*MERGE_CODE),
            "libraries": library_versions(),
        }
    )
    path = cache_dir() / "merges" / f"{key}.safetensors"
    cached = merged_facts(path)
    if cached is None:
        with file_lock(path):  # a second process merging the same waits, then loads the first's weights
            cached = merged_facts(path, report=True)
            if cached is None:
                return Applied(artifacts=artifacts, info={**_merge(model, tokenizer, params, path), "from_cache": False})
    load_model(model, str(path))
    return Applied(artifacts=artifacts, info={**cached, "from_cache": True})


def merged_problem(path: Path, full: bool = False) -> str | None:
    """None when the merged weights at `path` match the sha256 their facts file records (through the
    file-hash memo, or hashed afresh with `full`); else what is wrong."""
    facts_path = path.with_name(path.name + ".json")
    if not path.is_file() or not facts_path.is_file():
        return "its weights or its facts are missing"
    try:
        facts = json.loads(facts_path.read_text(encoding="utf-8"))
        recorded = facts["weights_sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return "its facts are unreadable or hold no weights_sha256 (made by an older harness)"
    return None if recorded == (fresh_sha256(path) if full else sha256_file(path)) else "its weights differ from their recorded sha256"


def merged_facts(path: Path, report: bool = False) -> dict[str, Any] | None:
    """The facts of the merged weights at `path` if they are there and whole; else None, and with
    `report`, one line saying what is wrong with weights that are there."""
    problem = merged_problem(path)
    if problem is None:
        return json.loads(path.with_name(path.name + ".json").read_text(encoding="utf-8"))
    if report and (path.exists() or path.with_name(path.name + ".json").exists()):
        say(f"merged weights {path.name[:16]}: {problem}; merged again")
    return None


def _merge(model: Any, tokenizer: Any, params: dict[str, Any], path: Path) -> dict[str, Any]:
    """Merge the sources into `model` and cache the result at `path`; the facts of the merge."""
    from safetensors.torch import save_model

    sources = resolve_sources(params["sources"])
    began = time.perf_counter()
    models = []
    for source in sources:
        loaded = load_weights(source)
        _check_shapes(model, loaded, source.name)
        models.append(loaded)
    loaded_seconds = time.perf_counter() - began
    facts: dict[str, Any] = {"method": params["method"]}
    if params["method"] in REGMEAN:
        from harness.wrappers._merge_regmean import regmean, regmean_pp

        rows = [_rows(tokenizer, texts) for texts in _calibration(params)]
        merge = regmean_pp if params["method"] == "regmean_pp" else regmean
        facts.update(merge(model, models, rows, params["alpha"], CALIBRATION_BATCH, normalise=params["gram"] == "mean"))
        facts["calibration_tokens"] = [int(r.numel()) for r in rows]
    else:
        _merge_tensors(model, models, params)
        if params["method"] != "linear":
            facts["lam"] = _lam(params)
    facts["load_seconds"] = round(loaded_seconds, 1)
    facts["merge_seconds"] = round(time.perf_counter() - began - loaded_seconds, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    save_model(model, str(partial))
    facts["weights_sha256"] = fresh_sha256(partial)
    atomic_write_text(path.with_name(path.name + ".json"), json.dumps(facts, sort_keys=True) + "\n")
    partial.replace(path)
    return facts


def _fingerprint(model: Any) -> str:
    """sha256 of the model's parameters as they stand (the base, with any wrapper before merge)."""
    import hashlib

    import torch

    digest = hashlib.sha256()
    for name, parameter in model.named_parameters():
        digest.update(name.encode())
        digest.update(parameter.detach().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _check_shapes(base: Any, source: Any, name: str) -> None:
    """One line naming the first parameter where `source` and the base differ in name or shape."""
    ours = dict(base.named_parameters())
    theirs = dict(source.named_parameters())
    for key, parameter in ours.items():
        if key not in theirs:
            raise HarnessError(f"merge: source {name} has no parameter {key} (architectures differ)")
        if tuple(theirs[key].shape) != tuple(parameter.shape):
            raise HarnessError(
                f"merge: source {name} differs at {key}: shape {list(theirs[key].shape)}, the base's {list(parameter.shape)}"
            )
    extra = [key for key in theirs if key not in ours]
    if extra:
        raise HarnessError(f"merge: source {name} has a parameter the base lacks: {extra[0]} (architectures differ)")


def _merge_tensors(model: Any, models: list[Any], params: dict[str, Any]) -> None:
    import torch

    from harness.wrappers import _merge_methods as m  # imports torch: registering the wrapper must not

    method = params["method"]
    generator = torch.Generator().manual_seed(params["seed"])
    theirs = [dict(source.named_parameters()) for source in models]
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            tensors = [t[name].detach() for t in theirs]
            if method == "linear":
                merged = m.linear(tensors, _weights(params))
            else:
                vectors = m.task_vectors(parameter.detach(), tensors)
                inner = method
                if method == "dare":
                    vectors = [m.drop_and_rescale(v, params["p"], generator) for v in vectors]
                    inner = params["dare_base"]
                if inner == "ties":
                    merged = m.ties(parameter.detach(), vectors, params["density"], _lam(params))
                else:
                    merged = m.task_arithmetic(parameter.detach(), vectors, _lam(params))
            parameter.copy_(merged)


def _rows(tokenizer: Any, texts: list[str]) -> Any:
    """The texts' tokens, each followed by end-of-text, packed into rows of ROW_TOKENS (the last,
    shorter row dropped unless it is the only one): calibration inputs without padding."""
    import torch

    ids: list[int] = []
    for text in texts:
        ids += tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    full = len(ids) // ROW_TOKENS
    if full == 0:
        return torch.tensor([ids])
    return torch.tensor(ids[: full * ROW_TOKENS]).view(full, ROW_TOKENS)

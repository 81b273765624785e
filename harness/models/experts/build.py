"""Build an expert from its recipe (harness.models.experts.recipes) into a model folder in the cache.

`ensure_built(recipe, base)` returns `$HARNESS_CACHE_DIR/experts/<name>-<key hash>/`, fine-tuning it
first if it is not there, the key being everything the weights depend on (`cache_key`: the recipe,
the base's weights, the training data's sha256s, the source digest of this module and what it
imports, the library versions). The folder is an ordinary Hugging Face folder (config,
safetensors, tokenizer) plus `build.json` (the recipe and its hash, the key, the training data's
sha256 and the disjointness check's figures, the loss on held-out examples before and after, the
seconds it took, the weights' sha256, and the manifest of every other file, checked on each use: a
folder that fails is reported in one line and built again). The folder is assembled aside and
renamed into place whole, and `build.json` is its last file: a killed build leaves a hidden
staging folder, never one that looks finished; two processes asking at once build it once.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from importlib.metadata import version
from pathlib import Path
from typing import Any

from harness._util import log
from harness._util.code import code_digest, library_versions
from harness._util.environ import scoped_environ
from harness._util.files import build_verified, folder_problem, key_name, sha256_file, write_facts
from harness._util.paths import cache_dir
from harness.models.experts.recipes import ExpertRecipe
from harness.models.experts.skills import SKILLS, Example, data_sha256s
from harness.models.loading import load_model
from harness.models.sources import ResolvedModel
from harness.tasks import data

BUILD_FILE = "build.json"
BUILDER = "harness.models.experts.build"
"""The module whose source (with what it imports: the skills, the loader) keys every expert."""


def cache_key(recipe: ExpertRecipe, base: ResolvedModel) -> dict[str, Any]:
    """Everything an expert's weights depend on (its training data found through $HARNESS_DATA_DIR)."""
    return {
        "name": recipe.name,
        "recipe": {k: v for k, v in asdict(recipe).items() if k != "base"},  # the base by its weights, not its name or path
        "base": base.weights_sha256,
        "data": data_sha256s(recipe.skill),
        "code": code_digest(BUILDER),
        "libraries": library_versions(),
    }


def built_folder(recipe: ExpertRecipe, base: ResolvedModel) -> Path:
    return cache_dir() / "experts" / key_name(cache_key(recipe, base))


def built_problem(folder: Path, full: bool = False) -> str | None:
    """None when a built expert's folder is whole (build.json's manifest; see harness._util.files.folder_problem)."""
    return folder_problem(folder, BUILD_FILE, full)


def is_built(recipe: ExpertRecipe, base: ResolvedModel) -> bool:
    return built_problem(built_folder(recipe, base)) is None


def ensure_built(recipe: ExpertRecipe, base: ResolvedModel, data_dir: Path | None = None) -> Path:
    """The recipe's model folder, fine-tuned from `base` (the recipe's base, resolved by the
    caller) now if it is missing or fails its check, on training data from `data_dir` (None:
    $HARNESS_DATA_DIR)."""

    def write(staging: Path) -> None:
        logging.getLogger(__name__).info(f"building the {recipe.name} expert once ({recipe.steps} steps, CPU minutes)")
        build(recipe, base, staging)

    with scoped_environ({data.DATA_DIR_ENV: str(data_dir) if data_dir is not None else None}):  # the training data is found through it
        folder = built_folder(recipe, base)
        build_verified(folder, write, built_problem, f"expert {recipe.name}")
    return folder


def _batch(tokenizer: Any, examples: list[Example]) -> dict[str, Any]:
    """Right-padded ids of prompt + target, their mask, and where the targets are: `rows`,
    `positions` (the position predicting each target token) and `targets`."""
    import torch

    encoded = []
    for example in examples:
        prompt = tokenizer(example.prompt, add_special_tokens=False)["input_ids"]
        target = tokenizer(example.target, add_special_tokens=False)["input_ids"]
        encoded.append((prompt, target))
    width = max(len(p) + len(t) for p, t in encoded)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    ids = torch.tensor([p + t + [pad] * (width - len(p) - len(t)) for p, t in encoded])
    mask = torch.tensor([[1] * (len(p) + len(t)) + [0] * (width - len(p) - len(t)) for p, t in encoded])
    rows = [r for r, (p, t) in enumerate(encoded) for _ in t]
    positions = [len(p) - 1 + k for p, t in encoded for k in range(len(t))]
    targets = [token for _, t in encoded for token in t]
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "rows": torch.tensor(rows),
        "positions": torch.tensor(positions),
        "targets": torch.tensor(targets),
    }


def _loss(model: Any, batch: dict[str, Any], bf16: bool) -> Any:
    """Mean cross-entropy of the target tokens; the LM head runs at those positions only."""
    import torch
    import torch.nn.functional as F

    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        hidden = model.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    logits = model.lm_head(hidden[batch["rows"], batch["positions"]].float())
    return F.cross_entropy(logits, batch["targets"])


def _mean_loss(model: Any, tokenizer: Any, examples: list[Example], size: int = 32) -> float:
    """Mean cross-entropy per target token."""
    import torch

    total, tokens = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(examples), size):
            batch = _batch(tokenizer, examples[start : start + size])
            count = len(batch["targets"])
            total += float(_loss(model, batch, bf16=False)) * count
            tokens += count
    return total / max(1, tokens)


def _trainable(model: Any) -> list[Any]:
    """Every parameter but the input embeddings (with SmolLM2's tied head, the head too): they are
    a fifth of the weights and the costliest update, and RegMean keeps the base's anyway."""
    embeddings = model.get_input_embeddings().weight
    for parameter in model.parameters():
        parameter.requires_grad_(parameter is not embeddings)
    return [p for p in model.parameters() if p.requires_grad]


def build(recipe: ExpertRecipe, base: ResolvedModel, out: Path) -> dict[str, Any]:
    """Fine-tune `base` (the recipe's base) and write the expert's folder into `out`; returns
    build.json's content. Torch's global random state is left as it was."""
    import torch

    started = time.perf_counter()
    training = SKILLS[recipe.skill](recipe.examples + recipe.held_out, recipe.seed)
    resolved = base
    loaded = load_model(resolved, "cpu")
    model, tokenizer = loaded.model, loaded.tokenizer
    threads = torch.get_num_threads()
    torch.set_num_threads(recipe.threads)
    try:
        return _train(recipe, training, resolved, model, tokenizer, out, started)
    finally:
        torch.set_num_threads(threads)


def _train(recipe: ExpertRecipe, training: Any, resolved: Any, model: Any, tokenizer: Any, out: Path, started: float) -> dict[str, Any]:
    import torch

    held_out, train = list(training.examples[: recipe.held_out]), list(training.examples[recipe.held_out :])
    before = _mean_loss(model, tokenizer, held_out)
    losses: list[float] = []
    with torch.random.fork_rng():
        torch.manual_seed(recipe.seed)
        generator = torch.Generator().manual_seed(recipe.seed)
        trained = _trainable(model)
        optimizer = torch.optim.AdamW(trained, lr=recipe.lr, weight_decay=recipe.weight_decay)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: min((s + 1) / recipe.warmup, (recipe.steps - s) / max(1, recipe.steps - recipe.warmup))
        )
        order = torch.randperm(len(train), generator=generator).tolist()
        model.train()
        began = time.perf_counter()
        for step in log.progress(recipe.steps, f"expert {recipe.name}", "step", iterable=range(recipe.steps), mininterval=10):
            chosen = [train[order[(step * recipe.batch + k) % len(order)]] for k in range(recipe.batch)]
            loss = _loss(model, _batch(tokenizer, chosen), recipe.bf16_autocast)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trained, 1.0)
            optimizer.step()
            schedule.step()
            losses.append(round(loss.item(), 4))
        train_seconds = time.perf_counter() - began
        model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    after = _mean_loss(model, tokenizer, held_out)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    first, last = losses[: min(10, len(losses))], losses[-min(10, len(losses)) :]
    facts = {
        "recipe": asdict(recipe),
        "recipe_sha256": recipe.identity(),
        "base": {"name": recipe.base, "weights_sha256": resolved.weights_sha256},
        "data": {
            "examples_sha256": training.sha256(),
            "train_examples": len(train),
            "held_out_examples": len(held_out),
            "files": training.files,
            "disjointness": training.disjointness,
            "first_example": asdict(train[0]),
        },
        "train_loss": {
            "first_10_steps": round(sum(first) / len(first), 4),
            "last_10_steps": round(sum(last) / len(last), 4),
            "per_step": losses,
        },
        "held_out_loss": {"base": round(before, 4), "expert": round(after, 4)},
        "versions": {name: version(name) for name in ("torch", "transformers")},
        "train_seconds": round(train_seconds, 1),
        "seconds": round(time.perf_counter() - started, 1),
        "weights_sha256": {p.name: sha256_file(p) for p in sorted(out.glob("*.safetensors"))},
    }
    return write_facts(out, BUILD_FILE, facts, cache_key(recipe, resolved))


def read_build(folder: Path) -> dict[str, Any]:
    return json.loads((folder / BUILD_FILE).read_text(encoding="utf-8"))


def calibration_examples(recipe: ExpertRecipe, count: int) -> list[Example]:
    """The first `count` of the expert's training examples (its own data, for RegMean)."""
    training = SKILLS[recipe.skill](recipe.examples + recipe.held_out, recipe.seed)
    return list(training.examples[recipe.held_out : recipe.held_out + count])

"""Build the offline VLM from its recipe (harness.models.vlm.recipe) into a model folder in the cache.

`ensure_built(recipe, language_model)` returns `$HARNESS_CACHE_DIR/vlm/<name>-<key hash>/`, training it
first if it is not there (minutes, once), the key being everything the weights depend on
(`cache_key`: the recipe, the language model's weights, the train questions' sha256, the source
digest of this module and what it imports, the library versions): an ordinary Hugging Face LLaVA
folder (config, safetensors, processor) plus `build.json`, the recipe with its hash, the key, the
training data's identity (the easy-vqa package's train questions, by sha256), what each stage took
and measured, the sha256 of the weights written and the manifest of every other file, checked on
each use (a folder that fails is reported in one line and built again). The folder is assembled
aside and renamed into place whole; two processes asking at once build it once.

`python -m harness.models.vlm.build` builds (or finds) the default recipe's model and prints its folder.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm import tqdm

from harness._util.code import code_digest, library_versions
from harness._util.files import build_verified, folder_problem, key_name, sha256_file, write_facts
from harness._util.paths import cache_dir
from harness.errors import HarnessError
from harness.models.loading import LoadedModel, load_model
from harness.models.sources import ResolvedModel
from harness.models.vlm.recipe import BUILD_FILE, IMAGE_TOKEN, PROMPT, VLMRecipe
from harness.models.vlm.trainset import COLORS, SHAPES, Question, TrainSplit, attribute_labels, train_split

if TYPE_CHECKING:
    from harness.models.vlm.tower import GridEncoder

ANSWERS = (*SHAPES, *COLORS, "yes", "no")
_KINDS = ("shape", "color", "yes/no")


BUILDER = "harness.models.vlm.build"
"""The module whose source (with what it imports: the tower, the train split, the loader) keys the VLM."""


def cache_key(recipe: VLMRecipe, language_model: ResolvedModel) -> dict[str, Any]:
    """Everything the VLM's weights depend on."""
    return {
        "name": recipe.name,
        "recipe": {k: v for k, v in asdict(recipe).items() if k != "language_model"},  # by its weights, not its name or path
        "prompt": PROMPT,
        "image_token": IMAGE_TOKEN,
        "language_model": language_model.weights_sha256,
        "data": train_split().questions_sha256,
        "code": code_digest(BUILDER),
        "libraries": library_versions(),
    }


def built_folder(recipe: VLMRecipe, language_model: ResolvedModel) -> Path:
    return cache_dir() / "vlm" / key_name(cache_key(recipe, language_model))


def built_problem(folder: Path, full: bool = False) -> str | None:
    """None when a built VLM's folder is whole (build.json's manifest; see harness._util.files.folder_problem)."""
    return folder_problem(folder, BUILD_FILE, full)


def ensure_built(recipe: VLMRecipe, language_model: ResolvedModel) -> Path:
    """The recipe's model folder, built on `language_model` (the recipe's, resolved by the
    caller) now if it is missing or fails its check."""

    def write(staging: Path) -> None:
        logging.getLogger(__name__).info(f"building the offline VLM {recipe.name} once (CPU minutes: 23 on a busy 2-core machine)")
        build(recipe, language_model, staging)

    folder = built_folder(recipe, language_model)
    build_verified(folder, write, built_problem, f"VLM {recipe.name}")
    return folder


def build(recipe: VLMRecipe, language_model: ResolvedModel, out: Path, validation_questions: int = 300) -> dict[str, Any]:
    """Train the recipe's model and write its folder into `out`; returns what build.json holds.
    `validation_questions`: how many held-out questions the check in build.json reads (they do
    not touch the weights, so they are not part of the recipe). Torch's global random state is
    left as it was."""
    started = time.perf_counter()
    data = train_split()
    resolved = language_model
    language = load_model(resolved, "cpu")
    with torch.random.fork_rng():
        torch.manual_seed(recipe.seed)
        generator = torch.Generator().manual_seed(recipe.seed)
        images = _Images(data, recipe)
        train_ids = [i for i in data.image_ids() if i % recipe.held_out_every][: recipe.train_images]
        encoder, encoder_facts = _train_encoder(recipe, data, images, train_ids, generator)
        model, processor = _assemble(recipe, encoder, language)
        projector_facts = _train_projector(recipe, model, processor, data, images, train_ids, generator)
        validation = _validate(model, processor, data, images, recipe, validation_questions)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    facts = {
        "recipe": asdict(recipe),
        "recipe_sha256": recipe.identity(),
        "prompt": PROMPT,
        "image_token": IMAGE_TOKEN,
        "language_model": {"name": recipe.language_model, "weights_sha256": resolved.weights_sha256},
        "data": {
            "package": f"easy-vqa=={version('easy-vqa')}",
            "questions_sha256": data.questions_sha256,
            "train_images": len(train_ids),
            "held_out_images": sum(not i % recipe.held_out_every for i in data.image_ids()),
        },
        "encoder": encoder_facts,
        "projector": projector_facts,
        "held_out_first_token_accuracy": validation,
        "versions": {name: version(name) for name in ("torch", "transformers")},
        "torch_threads": torch.get_num_threads(),  # float sums, hence the weights, depend on it
        "seconds": round(time.perf_counter() - started, 1),
        "weights_sha256": {p.name: sha256_file(p) for p in sorted(out.glob("*.safetensors"))},
    }
    return write_facts(out, BUILD_FILE, facts, cache_key(recipe, resolved))


class _Images:
    """The train images as normalised tensors, read once."""

    def __init__(self, data: TrainSplit, recipe: VLMRecipe) -> None:
        self.data = data
        self.size = recipe.image_size
        self._tensors: dict[int, torch.Tensor] = {}
        self._pictures: dict[int, Image.Image] = {}

    def picture(self, image_id: int) -> Image.Image:
        if image_id not in self._pictures:
            with Image.open(self.data.image_path(image_id)) as image:
                self._pictures[image_id] = image.convert("RGB")
        return self._pictures[image_id]

    def tensor(self, image_ids: list[int]) -> torch.Tensor:
        """[n, 3, size, size] in [-1, 1], as the processor's mean 0.5 / std 0.5 leaves them."""
        for i in image_ids:
            if i not in self._tensors:
                array = np.asarray(self.picture(i).resize((self.size, self.size)), dtype=np.float32) / 255.0
                self._tensors[i] = (torch.from_numpy(array).permute(2, 0, 1) - 0.5) / 0.5
        return torch.stack([self._tensors[i] for i in image_ids])


def _train_encoder(
    recipe: VLMRecipe, data: TrainSplit, images: _Images, train_ids: list[int], generator: torch.Generator
) -> tuple[GridEncoder, dict[str, float]]:
    """Stage 1: the grid encoder's CLS output and each of its image tokens classify the image's
    shape and colour (a label the questions do not give is ignored), so that every token the
    projector will see says what the image shows; images are flipped left-right at random."""
    from harness.models.vlm.tower import GridEncoder, GridEncoderConfig

    labels = attribute_labels(data.questions)
    config = GridEncoderConfig(
        image_size=recipe.image_size,
        patch_size=recipe.patch_size,
        channels=recipe.channels,
        hidden_size=recipe.hidden_size,
        num_attention_heads=recipe.num_attention_heads,
        intermediate_size=recipe.intermediate_size,
    )
    encoder = GridEncoder(config)
    heads = torch.nn.Linear(recipe.hidden_size, len(SHAPES) + len(COLORS))
    shape = torch.tensor([labels.get(i, {}).get("shape", -100) for i in train_ids])
    color = torch.tensor([labels.get(i, {}).get("color", -100) for i in train_ids])
    pixels = images.tensor(train_ids)
    optimizer = torch.optim.AdamW([*encoder.parameters(), *heads.parameters()], lr=recipe.encoder_lr)
    steps = recipe.encoder_epochs * (len(train_ids) // recipe.encoder_batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=recipe.encoder_lr, total_steps=steps)
    began = time.perf_counter()
    encoder.train()
    for _ in tqdm(range(recipe.encoder_epochs), desc="offline VLM: encoder", unit="epoch"):
        order = torch.randperm(len(train_ids), generator=generator)
        for k in range(len(train_ids) // recipe.encoder_batch):
            batch = order[k * recipe.encoder_batch : (k + 1) * recipe.encoder_batch]
            x = pixels[batch]
            flip = torch.rand(len(batch), generator=generator) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
            tokens = encoder(pixel_values=x).last_hidden_state  # CLS, then the grid's tokens
            logits = heads(tokens).flatten(0, 1)
            repeat = tokens.shape[1]
            loss = F.cross_entropy(logits[:, : len(SHAPES)], shape[batch].repeat_interleave(repeat), ignore_index=-100) + F.cross_entropy(
                logits[:, len(SHAPES) :], color[batch].repeat_interleave(repeat), ignore_index=-100
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    encoder.eval()
    held_out = [i for i in data.image_ids() if not i % recipe.held_out_every and len(labels.get(i, {})) == 2]
    with torch.no_grad():
        logits = heads(encoder(pixel_values=images.tensor(held_out)).pooler_output)
    truth = [labels[i] for i in held_out]
    facts = {
        "seconds": round(time.perf_counter() - began, 1),
        "steps": steps,
        "labelled_images": int(((shape >= 0) | (color >= 0)).sum()),
        "held_out_shape_accuracy": _mean(logits[:, : len(SHAPES)].argmax(1).tolist(), [t["shape"] for t in truth]),
        "held_out_color_accuracy": _mean(logits[:, len(SHAPES) :].argmax(1).tolist(), [t["color"] for t in truth]),
    }
    return encoder, facts


def _mean(predicted: list[int], truth: list[int]) -> float:
    return round(sum(p == t for p, t in zip(predicted, truth, strict=True)) / max(1, len(truth)), 4)


def _assemble(recipe: VLMRecipe, encoder: GridEncoder, language: LoadedModel) -> tuple[Any, Any]:
    """LLaVA around the trained encoder and the language model (its modules, not copies); the
    projector freshly initialised (seeded); the processor lays out one image token per grid cell."""
    from transformers import LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil
    from transformers.models.llava.modeling_llava import LlavaMultiModalProjector

    tokenizer = language.tokenizer
    token_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    if token_id is None or tokenizer.convert_ids_to_tokens(token_id) != IMAGE_TOKEN:
        raise HarnessError(f"the language model's tokenizer has no {IMAGE_TOKEN} token to mark image positions")
    config = LlavaConfig(
        vision_config=encoder.config,
        text_config=language.model.config,
        image_token_index=token_id,
        image_seq_length=encoder.config.grid**2,
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
        projector_hidden_act="gelu",
        tie_word_embeddings=bool(getattr(language.model.config, "tie_word_embeddings", False)),
    )
    with torch.device("meta"):
        model = LlavaForConditionalGeneration(config)
    model.model.vision_tower = encoder
    model.model.language_model = language.model.model
    model.lm_head = language.model.lm_head
    model.model.multi_modal_projector = LlavaMultiModalProjector(config)
    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": recipe.image_size},
        crop_size={"height": recipe.image_size, "width": recipe.image_size},
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=recipe.patch_size,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        image_token=IMAGE_TOKEN,
    )
    return model.eval(), processor


def _answer_batch(processor: Any, pictures: list[Image.Image], questions: list[Question], with_answers: bool) -> dict[str, torch.Tensor]:
    prompts = [PROMPT.format(question=q.text).replace("<image>", IMAGE_TOKEN) for q in questions]
    texts = [p + (f" {q.answer}\n" if with_answers else "") for p, q in zip(prompts, questions, strict=True)]
    return dict(processor(text=texts, images=pictures, padding=True, padding_side="right", return_tensors="pt"))


def _balanced_batch(pools: dict[str, list[Question]], size: int, generator: torch.Generator) -> list[Question]:
    """`size` questions drawn with replacement, a third of each type (the rest yes/no): the test
    split is three-quarters yes/no, but shapes and colours are what the projector must learn to say."""
    counts = {kind: size // len(_KINDS) for kind in _KINDS}
    counts["yes/no"] += size - sum(counts.values())
    return [pools[kind][int(i)] for kind in _KINDS for i in torch.randint(len(pools[kind]), (counts[kind],), generator=generator)]


def _train_projector(
    recipe: VLMRecipe, model: Any, processor: Any, data: TrainSplit, images: _Images, train_ids: list[int], generator: torch.Generator
) -> dict[str, Any]:
    """Stage 2: only the projector learns, on balanced batches; the loss is the language model's
    cross-entropy on the answer and the newline after it (right-padded batches: those are each
    row's last tokens)."""
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    projector = model.model.multi_modal_projector
    for parameter in projector.parameters():
        parameter.requires_grad_(True)
    training = set(train_ids)
    pools = {kind: [q for q in data.questions if q.image_id in training and q.kind == kind] for kind in _KINDS}
    tokenizer = processor.tokenizer
    optimizer = torch.optim.AdamW(projector.parameters(), lr=recipe.projector_lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=recipe.projector_lr, total_steps=recipe.projector_steps)
    began = time.perf_counter()
    losses = []
    for _ in tqdm(range(recipe.projector_steps), desc="offline VLM: projector", unit="step"):
        chosen = _balanced_batch(pools, recipe.projector_batch, generator)
        batch = _answer_batch(processor, [images.picture(q.image_id) for q in chosen], chosen, with_answers=True)
        lengths = batch["attention_mask"].sum(1)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=recipe.bf16_autocast):
            hidden = model.model(**batch).last_hidden_state
        rows, positions, targets = [], [], []
        for row, q in enumerate(chosen):
            answer = tokenizer(f" {q.answer}\n", add_special_tokens=False)["input_ids"]
            end = int(lengths[row])
            for k, token in enumerate(answer):
                rows.append(row)
                positions.append(end - len(answer) + k - 1)
                targets.append(token)
        logits = model.lm_head(hidden[rows, positions].float())
        loss = F.cross_entropy(logits, torch.tensor(targets))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
    for parameter in projector.parameters():
        parameter.requires_grad_(False)
    tail = losses[-20:]
    return {
        "seconds": round(time.perf_counter() - began, 1),
        "steps": recipe.projector_steps,
        "questions_seen": recipe.projector_steps * recipe.projector_batch,
        "final_loss": round(sum(tail) / len(tail), 4),
    }


def _validate(model: Any, processor: Any, data: TrainSplit, images: _Images, recipe: VLMRecipe, count: int) -> dict[str, float]:
    """Per question type, how often the 13 answers' first tokens rank the right one first after
    the prompt, on held-out train images (a quick check; the tasks measure the test split)."""
    tokenizer = processor.tokenizer
    first = [tokenizer(f" {a}", add_special_tokens=False)["input_ids"][0] for a in ANSWERS]
    held = [q for q in data.questions if not q.image_id % recipe.held_out_every]
    step = max(1, len(held) // count)
    chosen = held[::step][:count]
    right: dict[str, list[bool]] = {}
    for start in range(0, len(chosen), 32):
        part = chosen[start : start + 32]
        batch = _answer_batch(processor, [images.picture(q.image_id) for q in part], part, with_answers=False)
        with torch.no_grad():
            hidden = model.model(**batch).last_hidden_state
        last = batch["attention_mask"].sum(1) - 1
        scores = model.lm_head(hidden[torch.arange(len(part)), last])[:, first]
        for q, best in zip(part, scores.argmax(1).tolist(), strict=True):
            right.setdefault(q.kind, []).append(ANSWERS[best] == q.answer)
    return {kind: round(sum(v) / len(v), 4) for kind, v in sorted(right.items())}

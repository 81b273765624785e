"""VLMScorer: lm-eval's HFLM for a vision-language model, which also answers requests with images.

lm-eval's own `hf-multimodal` generates with images but refuses to score log-likelihoods, and
easy-VQA's multiple-choice form needs them; so this subclasses HFLM. A request without images is
HFLM's, unchanged: a VLM's language model scores text exactly as `hf` would. A request with images
(lm-eval's convention: `{"visual": [PIL images]}` as its last argument) is encoded by the model's
own processor: each `<image>` placeholder in the task's prompt (lm-eval's convention too) becomes
the processor's image token, one is prepended for each image the prompt does not place (the LLaVA
layout: image first), and the processor expands them and prepares the pixels. The model's
config says which token id marks image positions.

- Log-likelihood: the continuation's tokens are what the processor's encoding of context plus
  continuation adds to its encoding of the context (trailing spaces of the context move to the
  continuation, as in HFLM). Requests with the same context and images share one forward pass for
  all their single-token continuations (the logits at the context's last position), as HFLM's
  one-token cache does: easy-VQA's 13 answers cost 2 passes, not 13.
- Generation: batches left-padded, stopped and trimmed at the task's stop strings, through HFLM's
  own `_model_generate` (greedy unless the task samples).
- A model that consumes fewer visual tokens than its processor lays out (`droptokens`) says how
  many per image (harness.models.vlm.budget); each image's tokens are cut to that before the pass.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM
from lm_eval.models.utils import handle_stop_sequences, normalize_gen_kwargs, postprocess_generated_text

from harness._util.files import canonical_json
from harness.errors import HarnessError
from harness.lm._vlm_images import image_digest, images_of
from harness.models.vlm.budget import cut_image_runs, visual_token_budget

PLACEHOLDER = "<image>"


def image_token_id(model: Any) -> int:
    config = model.config
    found = getattr(config, "image_token_id", None)
    if found is None:
        found = getattr(config, "image_token_index", None)
    if found is None:
        raise HarnessError(f"{type(model).__name__}'s config names no image token (image_token_id)")
    return int(found)


class VLMScorer(HFLM):
    MULTIMODAL = True

    def __init__(self, pretrained: Any, processor: Any = None, **kwargs: Any) -> None:
        """`pretrained`: a loaded image-text-to-text model; `processor`: its processor (None: the
        one saved with it, read from its folder)."""
        if processor is None:
            from transformers import AutoProcessor

            processor = AutoProcessor.from_pretrained(pretrained.name_or_path, trust_remote_code=False)
        kwargs.setdefault("tokenizer", processor.tokenizer)
        super().__init__(pretrained=pretrained, backend="causal", **kwargs)
        self.processor = processor
        image_token = getattr(processor, "image_token", None)
        if not image_token:
            raise HarnessError(f"{type(processor).__name__} names no image token; harness cannot place images")
        self.image_token: str = image_token
        self.image_token_id = image_token_id(self.model)

    # --- encoding -------------------------------------------------------------------------------

    def prompt(self, context: str, n_images: int) -> str:
        """The task's context with its images placed: placeholders become the image token, and the
        images it does not place go first."""
        placed = min(context.count(PLACEHOLDER), n_images)
        text = context.replace(PLACEHOLDER, self.image_token, placed)
        return self.image_token * (n_images - placed) + text

    def encode(self, context: str, images: Sequence[Any]) -> tuple[list[int], dict[str, torch.Tensor]]:
        """Token ids (each image's tokens cut to the model's budget) and image inputs of one prompt."""
        encoded = dict(self.processor(text=self.prompt(context, len(images)), images=list(images), return_tensors="pt"))
        ids = encoded.pop("input_ids")[0].tolist()
        encoded.pop("attention_mask", None)
        budget = visual_token_budget(self.model)
        if budget is not None and images:
            laid_out = ids.count(self.image_token_id) // len(images)
            ids = cut_image_runs(ids, self.image_token_id, laid_out, budget)
        return ids, encoded

    def _batch(self, rows: list[tuple[list[int], dict[str, torch.Tensor]]], left: bool) -> dict[str, torch.Tensor]:
        """Pad the rows' ids (left for generation, right for scoring) and stack their image inputs."""
        width = max(len(ids) for ids, _ in rows)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.eot_token_id
        input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for row, (ids, _) in enumerate(rows):
            span = slice(width - len(ids), width) if left else slice(0, len(ids))
            input_ids[row, span] = torch.tensor(ids)
            mask[row, span] = 1
        batch = {"input_ids": input_ids, "attention_mask": mask}
        for key in rows[0][1]:
            parts = [inputs[key] for _, inputs in rows]
            if any(p.shape[1:] != parts[0].shape[1:] for p in parts):
                raise HarnessError(f"images of different sizes cannot share a batch of {type(self.model).__name__}: use --batch-size 1")
            batch[key] = torch.cat(parts)
        return {k: v.to(self.device, self.model.dtype) if v.is_floating_point() else v.to(self.device) for k, v in batch.items()}

    # --- log-likelihood -------------------------------------------------------------------------

    def loglikelihood(self, requests: list[Instance], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        return self._split(requests, super().loglikelihood, self._image_loglikelihood, disable_tqdm)

    def _image_loglikelihood(self, requests: list[Instance]) -> list[tuple[float, bool]]:
        groups: dict[tuple[str, tuple[str, ...]], list[tuple[int, str]]] = defaultdict(list)
        for index, request in enumerate(requests):
            context, continuation = request.args[0], request.args[1]
            spaces = len(context) - len(context.rstrip())
            if spaces:
                context, continuation = context[:-spaces], context[-spaces:] + continuation
            digests = tuple(image_digest(image) for image in images_of(request.args))
            groups[(context, digests)].append((index, continuation))
        # A pass: (ids, image inputs, [(request index, continuation ids)]), its last tokens scored.
        passes: list[tuple[list[int], dict[str, torch.Tensor], list[tuple[int, list[int]]]]] = []
        for (context, _), members in groups.items():
            images = images_of(requests[members[0][0]].args)
            context_ids, image_inputs = self.encode(context, images)
            single: list[tuple[int, list[int]]] = []
            for index, continuation in members:
                whole_ids, _ = self.encode(context + continuation, images)
                continuation_ids = whole_ids[len(context_ids) :]
                if not continuation_ids:
                    raise HarnessError(f"continuation {continuation!r} of task {requests[index].task_name} encodes to no tokens")
                if len(continuation_ids) == 1:
                    single.append((index, continuation_ids))
                else:
                    passes.append((context_ids + continuation_ids[:-1], image_inputs, [(index, continuation_ids)]))
            if single:
                passes.append((context_ids, image_inputs, single))
        answers: list[tuple[float, bool]] = [(0.0, False)] * len(requests)
        size = self.batch_size if isinstance(self.batch_size, int) else 1
        for start in range(0, len(passes), size):
            part = passes[start : start + size]
            batch = self._batch([(ids, inputs) for ids, inputs, _ in part], left=False)
            with torch.no_grad():
                logits = F.log_softmax(self.model(**batch).logits.float(), dim=-1)
            for row, (ids, _, scored) in enumerate(part):
                for index, continuation_ids in scored:
                    k = len(continuation_ids)
                    positions = logits[row, len(ids) - k : len(ids)]
                    target = torch.tensor(continuation_ids, device=positions.device)
                    total = float(positions.gather(-1, target[:, None]).sum())
                    answers[index] = (total, bool((positions.argmax(-1) == target).all()))
        return answers

    # --- generation -----------------------------------------------------------------------------

    def generate_until(self, requests: list[Instance], disable_tqdm: bool = False) -> list[str]:
        return self._split(requests, super().generate_until, self._image_generate, disable_tqdm)

    def _image_generate(self, requests: list[Instance]) -> list[str]:
        by_settings: dict[str, list[int]] = defaultdict(list)
        for index, request in enumerate(requests):
            by_settings[canonical_json(request.args[1])].append(index)
        eos = self.tok_decode(self.eot_token_id, skip_special_tokens=False)
        size = self.batch_size if isinstance(self.batch_size, int) else 1
        texts: list[str] = [""] * len(requests)
        for indices in by_settings.values():
            kwargs = normalize_gen_kwargs(requests[indices[0]].args[1], self.max_gen_toks)
            until = handle_stop_sequences(kwargs.pop("until", None), eos=eos)
            max_gen_toks = kwargs.pop("max_gen_toks")
            for start in range(0, len(indices), size):
                part = indices[start : start + size]
                batch = self._batch([self.encode(requests[i].args[0], images_of(requests[i].args)) for i in part], left=True)
                context = batch.pop("input_ids")
                out = self._model_generate(context=context, max_length=context.shape[1] + max_gen_toks, stop=until, **batch, **kwargs)
                for i, tokens in zip(part, out[:, context.shape[1] :].tolist(), strict=True):
                    texts[i] = postprocess_generated_text(self.tok_decode(tokens), until, None)
        return texts

    # --- text and images side by side -----------------------------------------------------------

    @staticmethod
    def _split(requests: list[Instance], text_fn: Any, image_fn: Any, disable_tqdm: bool) -> list[Any]:
        """Text requests to HFLM's method, requests with images to ours, answers in request order."""
        with_images = [i for i, r in enumerate(requests) if images_of(r.args)]
        plain = [i for i, r in enumerate(requests) if not images_of(r.args)]
        answers: list[Any] = [None] * len(requests)
        if plain:
            for i, answer in zip(plain, text_fn([requests[i] for i in plain], disable_tqdm=disable_tqdm), strict=True):
                answers[i] = answer
        if with_images:
            for i, answer in zip(with_images, image_fn([requests[i] for i in with_images]), strict=True):
                answers[i] = answer
        return answers

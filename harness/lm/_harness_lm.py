"""The lm-eval model type `harness`: evaluates a variant through lm-eval's own HFLM.

Registered with lm-eval (`@register_model("harness")`), so besides `harness eval` it also serves
`lm_eval --model harness --model_args model=smollm2-135m-instruct --include_path tasks ...`.
Scoring is HFLM's, unchanged; this class adds the variant-keyed request cache and builds the model
only when a request is not in that cache. Two additions to what HFLM returns:

- Sampled generation (`do_sample: true`, a task's `repeats: k`): a prompt's k samples are drawn in one
  batch of k after seeding torch from (seed, prompt, generation settings), so every sample is a
  function of those alone, not of batch size, request order or what the cache already held.
- Rolling log-likelihoods carry the number of tokens scored (`RollingLoglikelihood.tokens`), so a
  task can report token perplexity next to lm-eval's word and byte perplexity.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import lm_eval.models  # noqa: F401  (lm-eval registers its built-ins only into an empty registry)
from lm_eval.api.instance import Instance
from lm_eval.api.model import LM
from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM

from harness._util import log
from harness._util.files import sha256_json
from harness.errors import HarnessError
from harness.lm._fast_loglikelihood import FastHFLM
from harness.lm._request_cache import RequestCache
from harness.lm._shared_trunk import Member, member_heads, store
from harness.lm._summed_scores import SummedScoresHFLM
from harness.lm._vlm_images import images_of, keyable
from harness.lm._vlm_scorer import VLMScorer
from harness.models import DEFAULT_MODEL, float_folder, resolve_model
from harness.models.device import resolve_device
from harness.models.vlm.loading import is_vision_language, is_vision_language_model
from harness.spec._options import DEFAULT_SEED
from harness.spec._spec import VariantSpec
from harness.variant._variant import LoadedVariant, Variant

# Results are committed to the cache once per chunk of this many batches: log-likelihoods are cheap,
# a generation can take seconds, so a killed run loses at most a few batches of either. A chunk is
# also what the fast path sorts by length: larger chunks pad less.
_BATCHES_PER_CHUNK = {"loglikelihood": 16, "loglikelihood_rolling": 4, "generate_until": 2}


def chunk_size(kind: str, batch_size: int | str) -> int:
    """Requests per chunk of `kind`."""
    return _BATCHES_PER_CHUNK[kind] * (batch_size if isinstance(batch_size, int) else 8)


def largest_chunk(batch_size: int | str) -> int:
    """Requests in the largest chunk of any kind: a chunk starting at a document ends within this
    many documents of it (each document makes at least one request)."""
    return max(chunk_size(kind, batch_size) for kind in _BATCHES_PER_CHUNK)


def _chunks(units: list[list[int]], size: int) -> list[list[int]]:
    """Units in order, cut after the first unit that brings a chunk to `size` requests or more."""
    chunks: list[list[int]] = []
    part: list[int] = []
    for unit in units:
        part.extend(unit)
        if len(part) >= size:
            chunks.append(part)
            part = []
    if part:
        chunks.append(part)
    return chunks


def _refuse_nonfinite(kind: str, results: Sequence[Any], model: str, task: str) -> None:
    """A NaN or infinite log-likelihood is broken weights or scores, never a metric (NaN
    log-likelihoods once read as TruthfulQA MC1 1.0): refused in one line, naming the variant."""
    if kind == "generate_until":
        return
    for result in results:
        value = float(result[0] if isinstance(result, tuple | list) else result)
        if not math.isfinite(value):
            raise HarnessError(f"{model} gave a log-likelihood of {value} on {task}: its weights or scores are broken (nothing was cached)")


class RollingLoglikelihood(float):
    """A document's summed log-likelihood that also knows how many tokens it summed over."""

    tokens: int

    def __new__(cls, value: float, tokens: int) -> RollingLoglikelihood:
        made = super().__new__(cls, value)
        made.tokens = tokens
        return made


def _is_sampled(request: Instance) -> bool:
    return bool(request.args[1].get("do_sample"))


def sample_seed(seed: int, context: str, gen_kwargs: dict[str, Any]) -> int:
    """The torch seed for one prompt's samples."""
    return int(sha256_json([seed, context, gen_kwargs])[:15], 16)


@register_model("harness")
class HarnessLM(LM):
    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        batch_size: int | str | None = 1,
        max_batch_size: int | None = 64,
        device: str | None = None,
        seed: int = DEFAULT_SEED,
        *,
        variant: Variant | None = None,
        cache: RequestCache | None = None,
        task_hashes: Mapping[str, str] | None = None,
        members: Sequence[Member] = (),
        **others: Any,
    ) -> None:
        """`model`: a model string (plain lm-eval use). harness's runner passes a resolved
        `variant`, its request `cache` and the config hash of every task instead, and the
        `members` of its shared-trunk group (harness.lm._shared_trunk), scored on its passes."""
        if others:
            # HFLM's own model args (parallelize, device_map, ...) would build the model from a path;
            # a variant is built by harness on one device per process.
            raise HarnessError(
                f"--model harness does not take {', '.join(sorted(others))}: a variant runs on one device per"
                " process; spread a grid with `harness eval --executor ray`, or give a base without wrappers to"
                " lm-eval's hf or vllm model (README: Scale-out)"
            )
        super().__init__()
        if variant is None:
            spec = VariantSpec.parse(model)
            variant = Variant(spec, resolve_model(spec.base))
        self.variant = variant
        # lm-eval sends image tasks only to a MULTIMODAL model: a language model refuses them in one line.
        self.MULTIMODAL = True
        self._sees_images = is_vision_language(float_folder(variant.base))
        self.batch_size = batch_size if batch_size not in (None, "") else 1
        self.max_batch_size = max_batch_size
        self.device_name = resolve_device(device, fall_back=cache is None)
        self.seed = int(seed)
        self._cache = cache
        self._task_hashes = dict(task_hashes or {})
        self._members = tuple(members)
        self._member_heads: list[Any] = []
        """The members' heads, when this variant's scorer scores them on its passes."""
        self._hf: HFLM | None = None
        self._hf_by_batch: dict[int, HFLM] = {}
        self.loaded: LoadedVariant | None = None
        self.task_seconds: dict[str, float] = defaultdict(float)
        self.task_computed: dict[str, int] = defaultdict(int)
        self.task_cached: dict[str, int] = defaultdict(int)

    def hf(self) -> HFLM:
        """lm-eval's HFLM around the built variant, created on the first cache miss."""
        if self._hf is None:
            loaded = self.loaded = self.variant.load(self.device_name)
            if self._cache is not None:
                if loaded.cost is not None:
                    self._cache.put_fact("cost", loaded.cost.model_dump())
                self._cache.put_fact("applied", loaded.applied_facts())
            lm_class: type[HFLM] = FastHFLM  # HFLM's numbers; falls back to HFLM's path where it cannot reproduce them
            if is_vision_language_model(loaded.model):
                lm_class = VLMScorer
            elif loaded.scoring == "raw_sum":
                lm_class = SummedScoresHFLM
            self._hf = lm_class(
                pretrained=loaded.model,
                tokenizer=loaded.tokenizer,
                batch_size=self.batch_size,
                max_batch_size=self.max_batch_size,
                device=self.device_name,
            )
            if self._members and lm_class is FastHFLM:
                self._member_heads = member_heads(self._members, loaded.model, loaded.tokenizer)
        return self._hf

    def _hf_batch_of(self, size: int) -> HFLM:
        """An HFLM over the same loaded model with batch size `size` (cheap: nothing is copied)."""
        if size not in self._hf_by_batch:
            hf, loaded = self.hf(), self.loaded
            assert loaded is not None  # hf() built it
            self._hf_by_batch[size] = type(hf)(
                pretrained=loaded.model, tokenizer=loaded.tokenizer, batch_size=size, device=self.device_name
            )
        return self._hf_by_batch[size]

    def loglikelihood(self, requests: list[Instance], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        # A question's choices stay in one chunk, so the fast path runs their shared context once.
        by_context: dict[tuple[str, str], list[int]] = defaultdict(list)
        for i, request in enumerate(requests):
            by_context[(request.task_name, request.args[0])].append(i)
        out = self._answer_indexed(
            requests,
            "loglikelihood",
            lambda part: self._loglikelihood_shared([requests[i] for i in part]),
            lambda i: keyable(requests[i].args),
            list(by_context.values()),
        )
        return [(float(v[0]), bool(v[1])) for v in out]

    def _loglikelihood_shared(self, part: list[Instance]) -> list[tuple[float, bool]]:
        """HFLM's answers for `part`; the shared-trunk members' answers go to their caches."""
        hf = self.hf()
        if not self._member_heads:
            answers: list[tuple[float, bool]] = hf.loglikelihood(part, disable_tqdm=True)
            return answers
        answers, by_member = hf.loglikelihood_with_heads(part, self._member_heads)
        store(
            self._members,
            lambda cache: [cache.key(self._task_hashes[r.task_name], "loglikelihood", keyable(r.args)) for r in part],
            by_member,
        )
        return answers

    def loglikelihood_rolling(self, requests: list[Instance], disable_tqdm: bool = False) -> list[float]:
        def compute(part: list[Instance]) -> list[list[float]]:
            # One document at a time: a rolling window is the model's whole context, and its logits
            # (window x vocabulary) are gigabytes; batching windows multiplies that.
            hf = self._hf_batch_of(1)
            values = hf.loglikelihood_rolling(part, disable_tqdm=True)
            return [[float(v), len(hf.tok_encode(r.args[0]))] for v, r in zip(values, part, strict=True)]

        out = self._answer(requests, "loglikelihood_rolling", compute)
        return [RollingLoglikelihood(v[0], int(v[1])) for v in out]

    def generate_until(self, requests: list[Instance], disable_tqdm: bool = False) -> list[str]:
        """Greedy requests go to HFLM in its batches; sampled ones prompt by prompt (see module doc).
        lm-eval sends a request with `repeats: k` as k consecutive references to one Instance."""
        copies: dict[int, list[int]] = defaultdict(list)
        for i, request in enumerate(requests):
            copies[id(request)].append(i)
        draw = [0] * len(requests)
        units: list[list[int]] = []
        for positions in copies.values():
            if _is_sampled(requests[positions[0]]):
                for j, i in enumerate(positions):
                    draw[i] = j
                units.append(positions)
            else:
                units.extend([i] for i in positions)

        def key_args(i: int) -> list[Any]:
            request = requests[i]
            if not _is_sampled(request):
                return keyable(request.args)
            return [*keyable(request.args), {"seed": self.seed, "samples": len(copies[id(request)]), "draw": draw[i]}]

        def compute(part: list[int]) -> list[str]:
            import torch

            answers: dict[int, str] = {}
            greedy = [i for i in part if not _is_sampled(requests[i])]
            if greedy:
                texts = self.hf().generate_until([requests[i] for i in greedy], disable_tqdm=True)
                answers.update(zip(greedy, texts, strict=True))
            for i in part:
                if i in answers:
                    continue
                request, positions = requests[i], copies[id(requests[i])]
                torch.manual_seed(sample_seed(self.seed, *request.args[:2]))  # context, settings (not images)
                texts = self._hf_batch_of(len(positions)).generate_until([request] * len(positions), disable_tqdm=True)
                answers.update(zip(positions, texts, strict=True))
            return [answers[i] for i in part]

        return self._answer_indexed(requests, "generate_until", compute, key_args, units)

    def _answer(self, requests: list[Instance], kind: str, compute: Callable[[list[Instance]], list[Any]]) -> list[Any]:
        return self._answer_indexed(
            requests,
            kind,
            lambda part: compute([requests[i] for i in part]),
            lambda i: keyable(requests[i].args),
            [[i] for i in range(len(requests))],
        )

    def _answer_indexed(
        self,
        requests: list[Instance],
        kind: str,
        compute: Callable[[list[int]], list[Any]],
        key_args: Callable[[int], list[Any]],
        units: list[list[int]],
    ) -> list[Any]:
        """Answer from the cache where possible; compute the rest task by task, chunk by chunk.
        `units` are the index groups computed together (one prompt's samples). Chunks are cut from
        all of a task's units, cached or not, and a chunk with any answer missing is computed whole:
        HFLM batches within a chunk, and a log-likelihood moves with the batch it is computed in
        (in its last bits), so this way every answer comes from the same batch whatever the cache
        held before (a resumed run, a shard computed by a scale-out worker)."""
        if not self._sees_images and (task := next((r.task_name for r in requests if images_of(r.args)), None)):
            raise HarnessError(f"task {task} shows images: {self.variant.spec.model} is not a vision-language model")
        cache = self._cache
        keys: list[str] = []
        found: dict[str, Any] = {}
        answers: list[Any] = [None] * len(requests)
        if cache is not None:
            keys = [cache.key(self._task_hashes[r.task_name], kind, key_args(i)) for i, r in enumerate(requests)]
            found = cache.get_many(keys)
            answers = [found.get(k) for k in keys]
        by_task: dict[str, list[list[int]]] = defaultdict(list)
        for unit in units:
            by_task[requests[unit[0]].task_name].append(unit)
        size = chunk_size(kind, self.batch_size)
        missing: list[tuple[str, list[int]]] = []
        for task, task_units in by_task.items():
            for part in _chunks(task_units, size):
                if not self._wanted(requests, part):
                    continue
                if cache is not None and all(keys[i] in found for i in part):
                    self.task_cached[task] += len(part)
                else:
                    missing.append((task, part))
        if missing:
            self.hf()  # build the model now, so that its load time is not counted as a task's
        to_compute: dict[str, list[list[int]]] = defaultdict(list)
        for task, part in missing:
            to_compute[task].append(part)
        for task, parts in to_compute.items():  # one progress bar per task
            with log.progress(sum(map(len, parts)), f"{self.variant.spec.model} {task}", "req") as bar:
                for part in parts:
                    began = time.perf_counter()
                    results = compute(part)
                    _refuse_nonfinite(kind, results, self.variant.spec.model, task)  # before anything is cached
                    self.task_seconds[task] += time.perf_counter() - began
                    self.task_computed[task] += len(part)
                    for i, result in zip(part, results, strict=True):
                        answers[i] = result
                    if cache is not None:
                        cache.put_many((keys[i], answers[i]) for i in part)
                    bar.update(len(part))
        return answers

    def _wanted(self, requests: list[Instance], part: list[int]) -> bool:
        """Whether to answer this chunk (a scale-out worker answers only the chunks of its shard)."""
        return True

    # lm-eval asks these for chat templates and logging; they need the tokenizer, hence the model.
    @property
    def tokenizer_name(self) -> str:
        return self.hf().tokenizer_name

    def chat_template(self, chat_template: bool | str = False) -> str | None:
        return self.hf().chat_template(chat_template)

    def apply_chat_template(self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        return self.hf().apply_chat_template(chat_history, add_generation_prompt)

    def get_model_info(self) -> dict[str, Any]:
        return {
            "model": self.variant.spec.model,
            "variant_identity": self.variant.identity,
            "weights_sha256": self.variant.base.weights_sha256,
        }

"""The lm-eval model type `harness`: evaluates a variant through lm-eval's own HFLM.

Registered with lm-eval (`@register_model("harness")`), so besides `harness eval` it also serves
`lm_eval --model harness --model_args model=smollm2-135m-instruct --include_path tasks ...`.
Scoring is HFLM's, unchanged; this class adds the variant-keyed request cache and builds the model
only when a request is not in that cache.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import Any

from lm_eval.api.instance import Instance
from lm_eval.api.model import LM
import lm_eval.models  # noqa: F401  (lm-eval registers its built-ins only into an empty registry)
from lm_eval.api.registry import register_model
from tqdm import tqdm

from harness.cache import RequestCache
from harness.errors import HarnessError
from harness.models import DEFAULT_MODEL, LoadedModel, resolve_model
from harness.spec import VariantSpec
from harness.variant import Variant

# Results are committed to the cache once per chunk of this many batches: log-likelihoods are cheap,
# a generation can take seconds, so a killed run loses at most a few batches of either.
_BATCHES_PER_CHUNK = {"loglikelihood": 16, "loglikelihood_rolling": 4, "generate_until": 2}


def resolve_device(device: str | None, fall_back: bool = False) -> str:
    """`auto` -> cuda when available, else cpu. An unavailable CUDA device is an error, or, with
    `fall_back` (plain lm-eval, whose CLI defaults to cuda:0), cpu with a warning as HFLM does."""
    import torch

    if device in (None, "", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        if not fall_back:
            raise HarnessError(f"device {device!r} asked for, but torch sees no CUDA device")
        logging.getLogger(__name__).warning("no CUDA device: evaluating on cpu instead of %s", device)
        return "cpu"
    return device


@register_model("harness")
class HarnessLM(LM):
    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        batch_size: int | str | None = 1,
        max_batch_size: int | None = 64,
        device: str | None = None,
        *,
        variant: Variant | None = None,
        cache: RequestCache | None = None,
        task_hashes: Mapping[str, str] | None = None,
    ) -> None:
        """`model`: a model string (plain lm-eval use). harness's runner passes a resolved
        `variant`, its request `cache` and the config hash of every task instead."""
        super().__init__()
        if variant is None:
            spec = VariantSpec.parse(model)
            variant = Variant(spec, resolve_model(spec.base))
        self.variant = variant
        self.batch_size = batch_size if batch_size not in (None, "") else 1
        self.max_batch_size = max_batch_size
        self.device_name = resolve_device(device, fall_back=cache is None)
        self._cache = cache
        self._task_hashes = dict(task_hashes or {})
        self._hf: Any = None
        self.loaded: LoadedModel | None = None
        self.task_seconds: dict[str, float] = defaultdict(float)
        self.task_computed: dict[str, int] = defaultdict(int)
        self.task_cached: dict[str, int] = defaultdict(int)

    def hf(self):
        """lm-eval's HFLM around the built variant, created on the first cache miss."""
        if self._hf is None:
            from lm_eval.models.huggingface import HFLM

            self.loaded = self.variant.load(self.device_name)
            self._hf = HFLM(
                pretrained=self.loaded.model,
                tokenizer=self.loaded.tokenizer,
                batch_size=self.batch_size,
                max_batch_size=self.max_batch_size,
                device=self.device_name,
            )
        return self._hf

    def loglikelihood(self, requests: list[Instance], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        out = self._answer(requests, "loglikelihood", lambda r: self.hf().loglikelihood(r, disable_tqdm=True))
        return [(float(v[0]), bool(v[1])) for v in out]

    def loglikelihood_rolling(self, requests: list[Instance], disable_tqdm: bool = False) -> list[float]:
        out = self._answer(
            requests, "loglikelihood_rolling", lambda r: self.hf().loglikelihood_rolling(r, disable_tqdm=True)
        )
        return [float(v) for v in out]

    def generate_until(self, requests: list[Instance], disable_tqdm: bool = False) -> list[str]:
        return self._answer(requests, "generate_until", lambda r: self.hf().generate_until(r, disable_tqdm=True))

    def _answer(self, requests: list[Instance], kind: str, compute: Callable[[list[Instance]], list[Any]]) -> list[Any]:
        """Answer from the cache where possible; compute the rest task by task, chunk by chunk."""
        keys: list[str | None] = [None] * len(requests)
        found: dict[str, Any] = {}
        if self._cache is not None:
            keys = [self._cache.key(self._task_hashes[r.task_name], kind, r.args) for r in requests]
            found = self._cache.get_many(keys)
        answers: list[Any] = [found.get(k) if k is not None else None for k in keys]
        missing: dict[str, list[int]] = defaultdict(list)
        for i, (request, key) in enumerate(zip(requests, keys)):
            if key is not None and key in found:
                self.task_cached[request.task_name] += 1
            else:
                missing[request.task_name].append(i)
        total = sum(len(v) for v in missing.values())
        if total:
            self.hf()  # build the model now, so that its load time is not counted as a task's
        chunk = _BATCHES_PER_CHUNK[kind] * (self.batch_size if isinstance(self.batch_size, int) else 8)
        with tqdm(total=total, desc=f"{self.variant.spec.model} {kind}", unit="req", disable=total == 0) as bar:
            for task, indices in missing.items():
                for start in range(0, len(indices), chunk):
                    part = indices[start : start + chunk]
                    began = time.perf_counter()
                    results = compute([requests[i] for i in part])
                    self.task_seconds[task] += time.perf_counter() - began
                    self.task_computed[task] += len(part)
                    for i, result in zip(part, results):
                        answers[i] = result
                    if self._cache is not None:
                        self._cache.put_many((keys[i], answers[i]) for i in part)
                    bar.update(len(part))
        return answers

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

"""The answer context: what, besides the variant and the request, decides a cached answer.

It enters every request-cache key, so an answer is served only to the code and setting that would
compute it again: the source of the scoring path and of the variant's wrappers (a user's own
wrapper included; harness._util.code), the versions of the libraries on the path, the dtype, the
device class and the batch size. Every path is keyed by its batch size: a log-likelihood moves in
its last bits with the padded batch it is computed in (harness.lm._harness_lm computes whole chunks
for that reason), and a record must not say batch size 1 for answers computed at 8. The task's own
code enters its config hash (harness.engine._run).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness._util.code import code_digest, library_versions
from harness._util.files import sha256_json
from harness.lm._request_cache import RequestCache
from harness.variant import Variant
from harness.variant._variant import COMPUTE_DTYPE
from harness.wrappers import WRAPPERS

SCORING_PATH = ("harness.lm._harness_lm",)
"""The modules whose code (with everything they import) scores every variant."""


def wrapper_modules(variant: Variant) -> list[str]:
    """The modules that define the variant's wrappers: their apply, checks and fitters."""
    modules: set[str] = set()
    for name, _ in variant.spec.resolved():
        definition = WRAPPERS.get(name)
        functions: list[Callable[..., Any] | None] = [definition.apply, definition.check, definition.artifacts, definition.model_check]
        if definition.fitter is not None:
            functions += [definition.fitter.fit, definition.fitter.files]
        modules.update(f.__module__ for f in functions if f is not None and getattr(f, "__module__", None))
    return sorted(modules)


def variant_code_digest(variant: Variant) -> str:
    """sha256 of the source that scores `variant`: the scoring path and its wrappers' modules."""
    return code_digest(*SCORING_PATH, *wrapper_modules(variant))


def answer_context(variant: Variant, device: str, batch_size: int | str) -> dict[str, Any]:
    return {
        "code": variant_code_digest(variant),
        "libraries": library_versions(),
        "dtype": COMPUTE_DTYPE,
        "device": device.split(":")[0],
        "batch_size": batch_size,
    }


def open_request_cache(folder: Path, variant: Variant, device: str, batch_size: int | str) -> RequestCache:
    """The request cache of `variant` in `folder`, for answers computed on `device` at `batch_size`."""
    return RequestCache(folder, variant.identity, sha256_json(answer_context(variant, device, batch_size)))

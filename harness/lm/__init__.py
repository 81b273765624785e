"""The lm-eval model type `harness` (HarnessLM) and what answers its requests: the request cache,
the fast log-likelihood path, summed scores, shared-trunk sweeps and the VLM scorer.

lm-eval's registry loads `harness.lm._harness_lm:HarnessLM` for `--model harness` (the placeholder
that harness_lm_eval_hook.py registers names the defining module); `harness.lm.HarnessLM` is the
same class. Exports are lazy: importing a module of this package does not import lm-eval or torch.
"""

from typing import TYPE_CHECKING

from harness._util.lazy import lazy_exports

if TYPE_CHECKING:
    from harness.lm._harness_lm import HarnessLM, RollingLoglikelihood, chunk_size, largest_chunk, sample_seed
    from harness.lm._request_cache import RequestCache

__all__ = ["HarnessLM", "RequestCache", "RollingLoglikelihood", "chunk_size", "largest_chunk", "sample_seed"]

__getattr__, __dir__ = lazy_exports(
    "harness.lm",
    {
        "HarnessLM": "harness.lm._harness_lm",
        "RollingLoglikelihood": "harness.lm._harness_lm",
        "chunk_size": "harness.lm._harness_lm",
        "largest_chunk": "harness.lm._harness_lm",
        "sample_seed": "harness.lm._harness_lm",
        "RequestCache": "harness.lm._request_cache",
    },
)

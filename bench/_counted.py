"""Run `harness` or `lm_eval` (their CLIs, in this process) counting what the model computes.

    python bench/_counted.py COUNTS.json harness eval ...
    python bench/_counted.py COUNTS.json lm_eval --model hf ...

A global forward hook counts, padding included: `tokens`, the positions every decoder
(`*Model` under a `*ForCausalLM`, i.e. the trunk) was run on; `head_positions`, the rows the LM
head (a Linear whose output is the vocabulary) was applied to; and the seconds from the first
decoder call to the end of the last (`compute_span_s`). Written to COUNTS.json at exit, with the
process's wall time.
"""

from __future__ import annotations

import atexit
import json
import sys
import time

import torch

START = time.perf_counter()
COUNTS = {"tokens": 0, "head_positions": 0, "decoder_calls": 0, "first": None, "last": None}


def _count(module, args, kwargs, output) -> None:
    name = type(module).__name__
    if name.endswith("Model") and hasattr(output, "last_hidden_state") and output.last_hidden_state is not None:
        COUNTS["tokens"] += output.last_hidden_state.shape[:-1].numel()
        COUNTS["decoder_calls"] += 1
        COUNTS["last"] = time.perf_counter()
    elif isinstance(module, torch.nn.Linear) and module.out_features >= 32000 and isinstance(output, torch.Tensor):
        COUNTS["head_positions"] += output.shape[:-1].numel()
        COUNTS["last"] = time.perf_counter()


def _pre(module, args) -> None:
    if COUNTS["first"] is None and type(module).__name__.endswith("Model"):
        COUNTS["first"] = time.perf_counter()


def _write(path: str) -> None:
    first, last = COUNTS.pop("first"), COUNTS.pop("last")
    COUNTS["compute_span_s"] = round(last - first, 3) if first is not None and last is not None else 0.0
    COUNTS["wall_s"] = round(time.perf_counter() - START, 3)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(COUNTS, f)


def main() -> None:
    path, program, *args = sys.argv[1:]
    torch.nn.modules.module.register_module_forward_pre_hook(_pre)
    torch.nn.modules.module.register_module_forward_hook(_count, with_kwargs=True)
    atexit.register(_write, path)
    if program == "harness":
        from harness.cli._main import main as harness_main

        sys.exit(harness_main(args))
    if program == "lm_eval":
        from lm_eval.__main__ import cli_evaluate

        sys.argv = ["lm_eval", *args]
        cli_evaluate()
        return
    sys.exit(f"_counted.py: unknown program {program!r} (harness or lm_eval)")


if __name__ == "__main__":
    main()

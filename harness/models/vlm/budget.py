"""A visual-token budget: how many image tokens per image a model consumes.

A processor lays out a fixed number of placeholder tokens per image (LLaVA: one per patch). A
wrapper that drops visual tokens (`droptokens`) makes the model produce fewer image features than
that, so the prompt must hold fewer placeholders; the model says how many on itself, and the scorer
cuts each image's placeholders to that number before the forward pass. The sequence really is
shorter: that is where token dropping saves time.
"""

from __future__ import annotations

from typing import Any

BUDGET_ATTRIBUTE = "harness_visual_tokens"


def visual_token_budget(model: Any) -> int | None:
    """Image tokens per image that `model` consumes; None: as many as its processor lays out."""
    return getattr(model, BUDGET_ATTRIBUTE, None)


def set_visual_token_budget(model: Any, tokens: int) -> None:
    setattr(model, BUDGET_ATTRIBUTE, tokens)


def cut_image_runs(ids: list[int], image_token_id: int, laid_out: int, kept: int) -> list[int]:
    """`ids` with each image's `laid_out` placeholder tokens cut to `kept`: a run of consecutive
    placeholders holds one or more whole images (two images in a row make one run)."""
    out: list[int] = []
    start = 0
    while start < len(ids):
        end = start
        while end < len(ids) and ids[end] == image_token_id:
            end += 1
        if end == start:
            out.append(ids[start])
            start += 1
            continue
        images, rest = divmod(end - start, laid_out)
        if rest:
            raise ValueError(f"a run of {end - start} image tokens is not a whole number of {laid_out}-token images")
        out.extend([image_token_id] * (images * kept))
        start = end
    return out

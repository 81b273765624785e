"""Images as request keys: a picture is identified by its pixels, never by its Python object.

lm-eval hands a multimodal request its images as PIL objects (`{"visual": [...]}`, the request's
last argument). harness's request cache keys on the request's JSON text, and a PIL image's text is
its memory address: two runs would never share an answer, and two different images at one address
could. Keys therefore carry each image's digest: sha256 over its mode, size and raw pixels, the same
for the same picture however it was decoded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

VISUAL = "visual"


def image_digest(image: Any) -> str:
    digest = hashlib.sha256(f"{image.mode}:{image.size[0]}x{image.size[1]}:".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()


def images_of(arguments: Sequence[Any]) -> list[Any]:
    """The images of a request's arguments (none for a text request)."""
    last = arguments[-1] if arguments else None
    return list(last.get(VISUAL) or []) if isinstance(last, dict) and VISUAL in last else []


def keyable(arguments: Sequence[Any]) -> list[Any]:
    """The request's arguments with every image replaced by its digest (text requests unchanged)."""
    last = arguments[-1] if arguments else None
    if not (isinstance(last, dict) and VISUAL in last):
        return list(arguments)
    return [*arguments[:-1], {**last, VISUAL: [image_digest(image) for image in last[VISUAL]]}]

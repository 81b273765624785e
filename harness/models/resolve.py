"""Model string -> ResolvedModel, building the models harness makes (experts, the offline VLM) on
first use: the dispatch by name sits here, above the builders, which take their base as an
argument."""

from __future__ import annotations

from harness.models.catalog import CATALOG, BuiltVLM
from harness.models.experts import EXPERT_PREFIX, EXPERTS
from harness.models.experts import build as expert_build
from harness.models.sources import ResolvedModel, folder_model, is_syntactically_known, locate
from harness.models.vlm.recipe import RECIPES


def resolve_model(name: str) -> ResolvedModel:
    """Find `name`'s files (downloading from the hub, or building an expert or the offline VLM, if
    need be) and hash its weights."""
    is_syntactically_known(name)
    if name.startswith(EXPERT_PREFIX):
        recipe = EXPERTS.get(name[len(EXPERT_PREFIX) :])
        folder = expert_build.ensure_built(recipe, resolve_model(recipe.base))  # fine-tunes it first if it is not in the cache
        return folder_model(name, folder, f"built:{folder.name}")
    if name in CATALOG and isinstance(source := CATALOG.get(name).source, BuiltVLM):
        from harness.models.vlm import build as vlm_build  # imports torch: only when the VLM is named

        vlm = RECIPES[source.recipe]
        folder = vlm_build.ensure_built(vlm, resolve_model(vlm.language_model))  # trains it first if it is not in the cache
        return folder_model(name, folder, f"built:{folder.name}")
    return locate(name)

"""Model catalog, location and loading of base models."""

from harness.models.catalog import CATALOG, DEFAULT_MODEL, CatalogEntry
from harness.models.loading import LoadedModel, float_folder, load_model
from harness.models.resolve import resolve_model
from harness.models.sources import ResolvedModel, is_syntactically_known

__all__ = [
    "CATALOG",
    "DEFAULT_MODEL",
    "CatalogEntry",
    "LoadedModel",
    "ResolvedModel",
    "float_folder",
    "is_syntactically_known",
    "load_model",
    "resolve_model",
]

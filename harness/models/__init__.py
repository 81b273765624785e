"""Model catalog, location and loading of base models.

Exports are lazy: the CLI reads DEFAULT_MODEL at start without importing the loaders and builders.
"""

from typing import TYPE_CHECKING

from harness._util.lazy import lazy_exports

if TYPE_CHECKING:
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

__getattr__, __dir__ = lazy_exports(
    "harness.models",
    {
        "CATALOG": "harness.models.catalog",
        "DEFAULT_MODEL": "harness.models.catalog",
        "CatalogEntry": "harness.models.catalog",
        "LoadedModel": "harness.models.loading",
        "float_folder": "harness.models.loading",
        "load_model": "harness.models.loading",
        "resolve_model": "harness.models.resolve",
        "ResolvedModel": "harness.models.sources",
        "is_syntactically_known": "harness.models.sources",
    },
)

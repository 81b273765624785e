"""Arithmetic: lm-eval's own document normalisation, harness's data resolution."""

# Imported, not copied: the prompt shape is lm-eval's by construction, so scores stay comparable.
from lm_eval.tasks.arithmetic.utils import process_docs  # noqa: F401

from harness.tasks.data import custom_dataset as load_dataset  # noqa: F401

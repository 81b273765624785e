"""Utilities for every layer above harness.errors: atomic files and hashes, cache paths, the registry type, lazy re-exports."""

"""The `harness` command: one module per subcommand, shared options in harness.cli._common."""

from harness.cli._main import main

__all__ = ["main"]

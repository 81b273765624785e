"""`python -m harness`: the `harness` command."""

import sys

from harness.cli._main import main

sys.exit(main())

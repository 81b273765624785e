"""The `harness` command: its parser, made from one module per subcommand (each with `add_parser`
and `run`; options they share are in harness.cli._common), and the one place where bad input
becomes one line on stderr and exit status 2.

Command modules import only light modules at start, so `harness --help` imports neither torch nor
lm-eval; what a command needs is imported when it runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from harness._util import log
from harness._util.versions import version_of
from harness.cli import _cache, _compare, _eval, _experts, _export, _fit, _leaderboard, _models, _neurons, _report, _reproduce, _tasks
from harness.errors import HarnessError

if TYPE_CHECKING:
    from harness.cli._common import Handler

EXIT_BAD_INPUT = 2
COMMANDS = (_eval, _fit, _experts, _neurons, _compare, _report, _reproduce, _export, _leaderboard, _tasks, _models, _cache)
"""In the order `harness --help` lists them."""


class _Parser(argparse.ArgumentParser):
    """argparse's refusals as HarnessError, so they too are one line and exit status 2 (argparse's own
    print the usage first); subcommand parsers are of this class too (argparse's parser_class), so
    -q and -v are accepted before or after any command."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        group = self.add_mutually_exclusive_group()
        # Not given, they set nothing: a subcommand's parser leaves what was given before it.
        quiet = "only warnings and errors; no progress bars"
        verbose = "also harness's debug lines, and the libraries' logs and warnings (else only in the run's run.log)"
        group.add_argument("-q", "--quiet", dest="verbosity", action="store_const", const=log.QUIET, default=argparse.SUPPRESS, help=quiet)
        group.add_argument(
            "-v", "--verbose", dest="verbosity", action="store_const", const=log.VERBOSE, default=argparse.SUPPRESS, help=verbose
        )

    def error(self, message: str) -> NoReturn:
        raise HarnessError(f"{message} (see `{self.prog} --help`)")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="harness", description="Evaluate language models and their variants.")
    parser.add_argument("--version", action="version", version=version_line(), help="print harness's and lm-eval's versions")
    parser.set_defaults(verbosity=log.NORMAL)
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def version_line() -> str:
    return f"harness {version_of('harness')} (lm-eval {version_of('lm-eval')})"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = _parser().parse_args(argv)
        handler: Handler = args.handler
        with log.configured(args.verbosity):
            return handler(args, argv)
    except HarnessError as exc:
        print(f"harness: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("harness: interrupted; run the same command again to resume from the cache", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

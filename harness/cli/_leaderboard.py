"""`harness leaderboard`: versioned leaderboard releases from run records, and their static site."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING

from harness._util.paths import DEFAULT_LEADERBOARD_DIR, REFERENCE_RUNS_DIR
from harness.cli._common import add_bootstrap, command

if TYPE_CHECKING:
    from harness.cli._common import Subcommands

FOLDER_HELP = f"the leaderboard folder (default: {DEFAULT_LEADERBOARD_DIR})"


def add_parser(sub: Subcommands) -> None:
    parser = command(sub, "leaderboard", run, help="versioned leaderboard releases from run records, and their static site")
    board_sub = parser.add_subparsers(dest="leaderboard_command", required=True)
    build = board_sub.add_parser("build", help="build a release (leaderboard/releases/vX.Y.Z/release.json) from run records")
    build.add_argument("runs", nargs="*", metavar="RUNS", help=f"run folders or folders of runs (default: {REFERENCE_RUNS_DIR})")
    build.add_argument("--out", default=str(DEFAULT_LEADERBOARD_DIR), help=FOLDER_HELP)
    build.add_argument(
        "--version",
        help="MAJOR.MINOR.PATCH (default: the proposed one: patch for new rows, minor for new columns, major for a task version change)",
    )
    build.add_argument(
        "--normalise", action="store_true", help="add scores rescaled to the random baseline (Open LLM Leaderboard), labelled"
    )
    build.add_argument(
        "--allow-dirty",
        action="store_true",
        help="publish records made from a checkout with uncommitted changes (environment.git_dirty), marked as such"
        " on the site and in the release (refused otherwise)",
    )
    add_bootstrap(build)
    site = board_sub.add_parser("site", help="render every release into a static site (HTML, CSS, JavaScript; no server)")
    site.add_argument("--leaderboard", default=str(DEFAULT_LEADERBOARD_DIR), help=FOLDER_HELP)
    site.add_argument("--out", help="where the site goes (default: LEADERBOARD/site)")


def run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    if args.leaderboard_command == "site":
        from harness.leaderboard import build_site

        print(build_site(args.leaderboard, args.out))
        return 0
    from harness.leaderboard import build_release

    runs = args.runs or [str(REFERENCE_RUNS_DIR)]
    built = build_release(runs, args.out, args.version, args.normalise, args.seed, args.resamples, args.confidence, args.allow_dirty)
    log = built.changelog
    print(f"{built.version} {built.status}: {built.path} ({built.rows} rows, {built.columns} columns)")
    print(
        f"changes since {('v' + log.previous) if log.previous else 'nothing'} ({log.level}): {len(log.new_rows)} new rows,"
        f" {len(log.retired_rows)} retired rows, {len(log.new_columns)} new columns, {len(log.retired_columns)} retired columns,"
        f" {log.new_cells} new cells, {len(log.changed_values)} changed values, {len(log.version_changes)} task version changes,"
        f" {len(log.new_runs)} new runs, {len(log.retired_runs)} retired runs"
    )
    if log.dirty_runs:
        print(f"marked as made from a dirty tree (--allow-dirty): {', '.join(log.dirty_runs)}")
    return 0

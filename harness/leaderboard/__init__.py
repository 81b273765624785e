"""The versioned leaderboard: releases built from run records, and the static site that shows them.

`build_release` turns run folders into `<leaderboard>/releases/vX.Y.Z/release.json` (see
`Release`); `build_site` renders every release under a leaderboard folder into a static site.
"""

from harness.leaderboard._release import Built, build_release, read_release, release_paths
from harness.leaderboard._schema import Cell, Changelog, Column, Release, Row
from harness.leaderboard._site import build_site

__all__ = ["Built", "Cell", "Changelog", "Column", "Release", "Row", "build_release", "build_site", "read_release", "release_paths"]

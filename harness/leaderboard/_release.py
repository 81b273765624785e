"""Building, storing and reading releases: `<leaderboard>/releases/vX.Y.Z/release.json`.

A release is immutable. Its text depends only on its inputs (the runs, the comparison settings,
the previous release), so building a version again gives the same bytes, and a build that would
change an existing version is refused. Without a version, the build proposes the next one from
the changelog against the latest release (harness.leaderboard._versions).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness._util.files import atomic_write_text
from harness._util.paths import DEFAULT_LEADERBOARD_DIR, check_output_folder
from harness.analysis._defaults import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, check_bootstrap
from harness.errors import HarnessError
from harness.leaderboard._build import build_content, collect_runs, dirty_runs
from harness.leaderboard._schema import RELEASE_SCHEMA, Changelog, Comparison, Release
from harness.leaderboard._versions import LEVELS, Version, bump, changelog, parse_version, show
from harness.records import invalid_because
from harness.spec._options import DEFAULT_SEED

RELEASE_FILE = "release.json"


@dataclass(frozen=True)
class Built:
    version: str
    """vX.Y.Z."""
    path: Path
    status: str
    """`written`; `unchanged` (that version exists with these bytes); `up to date` (nothing
    changed since the latest release, so no version was proposed)."""
    changelog: Changelog
    rows: int
    columns: int


def release_paths(root: Path) -> dict[Version, Path]:
    """Every release under `root`, by version."""
    found = {}
    folder = Path(root) / "releases"
    if folder.is_dir():
        for sub in folder.iterdir():
            if (sub / RELEASE_FILE).is_file():
                try:
                    found[parse_version(sub.name)] = sub / RELEASE_FILE
                except HarnessError:
                    continue  # not a release folder
    return dict(sorted(found.items()))


def read_release(path: Path) -> Release:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if str(data.get("schema_version", "")).split(".")[0] != RELEASE_SCHEMA.split(".")[0]:
            raise HarnessError(f"{path}: release schema {data.get('schema_version')!r} is not {RELEASE_SCHEMA}")
        return Release.model_validate(data)
    except ValueError as exc:  # pydantic's ValidationError included
        raise HarnessError(f"{path} is not a readable release: {invalid_because(exc)}") from None
    except OSError as exc:
        raise HarnessError(f"{path} is not a readable release: {str(exc).splitlines()[0]}") from None


def release_text(release: Release) -> str:
    return release.model_dump_json(indent=1) + "\n"


def _at_least(level: str, floor: str) -> str:
    return max(level, floor, key=LEVELS.index)


def build_release(
    paths: Sequence[str | Path],
    root: str | Path = DEFAULT_LEADERBOARD_DIR,
    version: str | None = None,
    normalise: bool = False,
    seed: int = DEFAULT_SEED,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    allow_dirty: bool = False,
) -> Built:
    """Build a release from the run folders (or folders of runs) in `paths` into `root`. Records
    made from a dirty tree are refused unless `allow_dirty`, and then marked (RunRef.git_dirty,
    Changelog.dirty_runs)."""
    root = check_output_folder(root, "--out")
    check_bootstrap(seed, resamples, confidence)
    if version is not None:
        parse_version(version)
    settings = Comparison(seed=seed, resamples=resamples, confidence=confidence)
    runs = collect_runs(paths)
    dirty = dirty_runs(runs)
    if dirty and not allow_dirty:
        raise HarnessError(
            f"{len(dirty)} run(s) made from a dirty tree (uncommitted changes, environment.git_dirty): {', '.join(dirty)};"
            " run them again from a clean checkout, or give --allow-dirty to publish them marked"
        )
    content = build_content(runs, root, normalise, settings)
    existing = release_paths(root)
    latest = max(existing) if existing else None

    def log_against(previous: Version | None) -> Changelog:
        prior = read_release(existing[previous]) if previous is not None else None
        log = changelog(prior, content["columns"], content["rows"], content["runs"])
        if prior is not None and log.level == "none":
            same = prior.model_dump(exclude={"version", "changelog"}) == Release(
                version=prior.version, changelog=log, **content
            ).model_dump(exclude={"version", "changelog"})
            # New runs, settings or normalisation without a changed cell still make a new release.
            log = log if same else log.model_copy(update={"level": "patch"})
        return log

    if version is None:
        log = log_against(latest)
        if latest is not None and log.level == "none":  # "none" says there is a latest release, unchanged
            return Built(show(latest), existing[latest], "up to date", log, len(content["rows"]), len(content["columns"]))
        wanted = bump(latest, log.level)
    else:
        wanted = parse_version(version)
        below = [v for v in existing if v < wanted]
        log = log_against(max(below) if below else None)
        if wanted not in existing:
            if latest is not None and wanted < latest:
                raise HarnessError(f"{show(wanted)} is below the latest release {show(latest)}: give a higher version")
            # The first release (nothing below it) may take any number; a later one the changes' level.
            if below and wanted < (needed := bump(max(below), _at_least(log.level, "patch"))):
                raise HarnessError(
                    f"{show(wanted)} is too small for these changes ({log.level}: see the changelog): give {show(needed)} or above"
                )
    release = Release(version="{}.{}.{}".format(*wanted), changelog=log, **content)
    text = release_text(release)
    path = root / "releases" / show(wanted) / RELEASE_FILE
    status = "written"
    if wanted in existing:
        if existing[wanted].read_text(encoding="utf-8") != text:
            proposed = bump(latest, _at_least(log_against(latest).level, "patch"))
            raise HarnessError(
                f"release {show(wanted)} already exists with other content and releases are immutable:"
                f" build a new version (proposed {show(proposed)})"
            )
        status = "unchanged"
    else:
        atomic_write_text(path, text)
    return Built(show(wanted), path, status, log, len(release.rows), len(release.columns))

"""The release: a frozen, numbered leaderboard built from run records (typed, documented, versioned).

Stored as `<leaderboard>/releases/vMAJOR.MINOR.PATCH/release.json`. Bump RELEASE_SCHEMA's major
number when a field changes meaning or disappears, the minor one when a field is added.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from harness.records._formats import Identity, SafeName
from harness.records._schema import AppliedRecord, CostRecord, InterventionRecord, ScorerRecord

Version = Annotated[str, StringConstraints(pattern=r"^\d{1,6}\.\d{1,6}\.\d{1,6}$")]
"""MAJOR.MINOR.PATCH: it names the release's folder and its pages' folder."""
ReportPath = Annotated[str, StringConstraints(pattern=r"^(\.\./)*([A-Za-z0-9_][A-Za-z0-9_.\-]*/)+report\.html$")]
"""A run's report.html relative to the leaderboard folder (run folders usually sit beside it, hence
leading `../`): never an absolute path or a scheme, `..` only in front."""

RELEASE_SCHEMA = "1.1"
"""1.1: runs say whether they were made from a dirty tree, the changelog lists new, retired and
dirty runs, and `report` is always where the run's report goes."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class Column(_Frozen):
    """One measurement that cells may share: the same task, metric, task version, data, few-shot
    setting, documents evaluated and scorer. Anything else is another column."""

    id: str
    """First 12 hex digits of the sha256 of the key fields below."""
    task: str
    kind: str
    """`task` or `group` (a size-weighted mean of its tasks)."""
    family: str
    """The task family: the data directory's top folder, which mirrors tasks/<family>/ (`other` for hub data)."""
    metric: str
    higher_is_better: bool | None
    version: str | None
    data_sha256: str
    """sha256 of the sorted `split:sha256` list of the task's data files (of its tasks, for a group)."""
    num_fewshot: int | None
    n_samples: int | None
    """Documents evaluated (after --limit): a different subset is a different measurement."""
    scorer: ScorerRecord | None
    headline: bool
    """A top-level result of its run (a group, or a task in no group); the others are subtasks."""
    random_baseline: float | None = None
    """Expected score of a uniform random choice (mean over documents of 1/choices); set only when
    the release is normalised and the column is a multiple-choice accuracy."""


class Difference(_Frozen):
    """The paired difference of a variant's cell from its base, as `harness compare` computes it."""

    base_value: float | None
    """The base's value on the paired documents."""
    difference: float | None
    """variant - base."""
    ci_low: float | None
    ci_high: float | None
    n: int
    """Paired documents (document x filter entries)."""
    base_run: str


class Cell(_Frozen):
    value: float | None
    stderr: float | None
    run: str
    """The run record the value comes from (the latest run holding this variant and column)."""
    difference: Difference | None = None
    """None for a base, or where the base was not evaluated on this column."""
    normalised: float | None = None
    """Open LLM Leaderboard rescaling, 100 * max(0, (value - random) / (1 - random)); only in normalised releases."""


class LineageStep(_Frozen):
    """One step from the base to the variant: the base itself, then each wrapper in order."""

    name: str
    family: str
    """`base`, or the module that registers the wrapper (quantize, depth, steering, ...)."""
    params: dict[str, str] = Field(default_factory=dict)
    artifacts: dict[str, str] = Field(default_factory=dict)


class Row(_Frozen):
    identity: Identity
    """The variant's identity (sha256 of its intervention record)."""
    model: str
    """The model string as given in the latest run that evaluated the variant."""
    base: Identity
    """Identity of the base (the same base with no wrappers); equal to `identity` for a base."""
    base_model: str
    parent: Identity | None
    """The variant with one wrapper fewer, when it is in the release (lineage beyond the base)."""
    lineage: tuple[LineageStep, ...]
    base_origin: str
    intervention: InterventionRecord
    cost: CostRecord | None
    applied: tuple[AppliedRecord, ...] = ()
    runs: tuple[SafeName, ...]
    """Every run that evaluated this variant."""
    cells: dict[str, Cell]
    """Column id -> cell."""


class SweepPoint(_Frozen):
    variant: Identity
    """The variant's identity (its row)."""
    value: str
    """The swept parameter's value, as in the model string."""
    x: float | None
    """The value as a number; None when the parameter is not numeric."""


class Sweep(_Frozen):
    """Variants of one base that differ in one wrapper parameter only (harness.analysis._curves.sweeps)."""

    run: SafeName
    base: Identity
    base_model: str
    wrapper: str
    parameter: str
    fixed: tuple[tuple[str, str], ...]
    """The other parameters that vary among the run's variants, at the values this sweep holds."""
    points: tuple[SweepPoint, ...]


class RunRef(_Frozen):
    run_id: SafeName
    created_at: str
    harness_version: str
    git_commit: str | None
    command: tuple[str, ...]
    report: ReportPath | None
    """The run's report.html relative to the leaderboard folder: where `harness report` writes it,
    whether or not it is there yet (the site links it only when it is), so a release does not
    depend on which reports exist. Releases before schema 1.1 set it only when the file existed."""
    git_dirty: bool | None = None
    """The record's `environment.git_dirty`: True when the run was made from a checkout with
    uncommitted changes (published only with --allow-dirty, and marked); None when the record does
    not say (not a git checkout) and in releases before schema 1.1."""


class ChangedValue(_Frozen):
    row: str
    column: str
    old: float | None
    new: float | None


class VersionChange(_Frozen):
    """A task that appears with a new version (its old version's columns may stay beside the new ones)."""

    task: str
    old: str | None
    new: str | None


class Changelog(_Frozen):
    previous: str | None
    """The release compared with (the highest version below this one), None for the first."""
    level: str
    """`major` (a task version changed, or rows or columns retired), `minor` (new columns or changed
    values), `patch` (new rows or cells only), `none`, or `first`."""
    new_rows: tuple[str, ...] = ()
    retired_rows: tuple[str, ...] = ()
    new_columns: tuple[str, ...] = ()
    retired_columns: tuple[str, ...] = ()
    new_cells: int = 0
    changed_values: tuple[ChangedValue, ...] = ()
    version_changes: tuple[VersionChange, ...] = ()
    new_runs: tuple[str, ...] = ()
    """Run ids in this release and not in the previous one (every run in a first release)."""
    retired_runs: tuple[str, ...] = ()
    """Run ids of the previous release that this one leaves out."""
    dirty_runs: tuple[str, ...] = ()
    """Run ids of this release made from a dirty tree: the build was given --allow-dirty, and the
    site marks their rows and cells until they are run again from a clean checkout."""


class Comparison(_Frozen):
    """Settings of the paired comparison behind every `difference`."""

    seed: int
    resamples: int
    confidence: float


class Normalisation(_Frozen):
    method: str
    """What `normalised` means, in words, shown wherever normalised scores are."""


class Release(_Frozen):
    schema_version: str = RELEASE_SCHEMA
    version: Version
    """MAJOR.MINOR.PATCH."""
    comparison: Comparison
    normalisation: Normalisation | None
    runs: tuple[RunRef, ...]
    columns: tuple[Column, ...]
    rows: tuple[Row, ...]
    """Grouped by base: each base, then its variants."""
    unpaired: tuple[str, ...]
    """Model strings of the variants whose base no run holds (shown without differences)."""
    sweeps: tuple[Sweep, ...] = ()
    """For the site's sweep plots; values come from the rows' cells."""
    changelog: Changelog

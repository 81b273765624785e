"""The end of `harness eval`: the result table, then the commands that read the run next."""

from __future__ import annotations

from pathlib import Path

from harness.analysis._table import next_commands, print_table
from harness.records import load_run
from tests.helpers import REPO

WRAPPERS_RUN = REPO / "results" / "20261128T153000Z-5f064762"  # the base and its quantized variants
BASE_ONLY_RUN = REPO / "results" / "20261128T043448Z-c33acd4f"


def test_after_the_table_the_report_and_the_comparison(capsys):
    record = load_run(WRAPPERS_RUN).record
    folder = Path("runs") / record.run_id
    print_table(record, folder)
    out = capsys.readouterr().out
    table, _, after = out.partition(f"record: {folder / 'record.json'}")
    assert "smollm2-135m-instruct+quantize:bits=4" in table
    lines = after.splitlines()[1:]
    assert lines[0] == "next:"
    assert lines[1].split("   ")[0].strip() == f"harness report runs/{record.run_id}"
    assert lines[2].split("   ")[0].strip() == f"harness compare runs/{record.run_id}"


def test_a_run_with_nothing_to_pair_is_not_sent_to_compare():
    """A base alone has nothing to compare with; variants whose base ran elsewhere (--no-base) are
    compared with that other run."""
    record = load_run(BASE_ONLY_RUN).record
    assert [command for command, _ in next_commands(record, Path("runs/x"))] == ["harness report runs/x"]

    wrapped = load_run(WRAPPERS_RUN).record
    no_base = wrapped.model_copy(update={"variants": tuple(v for v in wrapped.variants if v.intervention.wrappers)})
    commands = [command for command, _ in next_commands(no_base, Path("my runs/x"))]
    assert commands == ["harness report 'my runs/x'", "harness compare 'my runs/x' BASE_RUN"]

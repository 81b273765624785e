"""Analysis of run records: paired comparisons with intervals, statistics, sweep curves and Pareto
fronts, plots, the report and the result table.

Exports are lazy: the CLI reads the defaults at start without importing numpy.
"""

from typing import TYPE_CHECKING

from harness._util.lazy import lazy_exports

if TYPE_CHECKING:
    from harness.analysis._compare import (
        Comparison,
        Summary,
        compare,
        format_table,
        number,
        short_name,
        signed,
        summarize,
        table_rows,
        to_json,
    )
    from harness.analysis._curves import COSTS, quantized_linear_bits
    from harness.analysis._defaults import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, MAX_RESAMPLES, check_bootstrap
    from harness.analysis._report import write_report
    from harness.analysis._table import print_json, print_table

__all__ = [
    "COSTS",
    "DEFAULT_CONFIDENCE",
    "DEFAULT_RESAMPLES",
    "MAX_RESAMPLES",
    "Comparison",
    "Summary",
    "check_bootstrap",
    "compare",
    "format_table",
    "number",
    "print_json",
    "print_table",
    "quantized_linear_bits",
    "short_name",
    "signed",
    "summarize",
    "table_rows",
    "to_json",
    "write_report",
]

__getattr__, __dir__ = lazy_exports(
    "harness.analysis",
    {
        "COSTS": "harness.analysis._curves",
        "quantized_linear_bits": "harness.analysis._curves",
        "DEFAULT_CONFIDENCE": "harness.analysis._defaults",
        "DEFAULT_RESAMPLES": "harness.analysis._defaults",
        "MAX_RESAMPLES": "harness.analysis._defaults",
        "check_bootstrap": "harness.analysis._defaults",
        "Comparison": "harness.analysis._compare",
        "Summary": "harness.analysis._compare",
        "compare": "harness.analysis._compare",
        "format_table": "harness.analysis._compare",
        "number": "harness.analysis._compare",
        "short_name": "harness.analysis._compare",
        "signed": "harness.analysis._compare",
        "table_rows": "harness.analysis._compare",
        "summarize": "harness.analysis._compare",
        "to_json": "harness.analysis._compare",
        "write_report": "harness.analysis._report",
        "print_json": "harness.analysis._table",
        "print_table": "harness.analysis._table",
    },
)

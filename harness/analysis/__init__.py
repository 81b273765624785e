"""Analysis of run records: paired comparisons with intervals, statistics, sweep curves and Pareto
fronts, plots, the report and the result table."""

from harness.analysis._compare import Comparison, Summary, compare, format_table, summarize, to_json
from harness.analysis._report import write_report
from harness.analysis._table import print_json, print_table

__all__ = ["Comparison", "Summary", "compare", "format_table", "print_json", "print_table", "summarize", "to_json", "write_report"]

"""Tables beside the paper's numbers, claim checks and plots, from results.json files."""
from .build import Report, build_report
from .claims import check_claims
from .tables import TABLE_NAMES, TABLES, build_table, build_tables, load_results

__all__ = ["TABLE_NAMES", "TABLES", "Report", "build_report", "build_table", "build_tables", "check_claims",
           "load_results"]

"""Tables beside the paper's numbers, claim checks and plots, from results.json files only."""
from .claims import check_claims
from .tables import TABLE_NAMES, TABLES, build_table, build_tables, load_results

__all__ = ["TABLE_NAMES", "TABLES", "build_table", "build_tables", "check_claims", "load_results"]

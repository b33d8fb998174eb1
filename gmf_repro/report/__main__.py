"""`python -m gmf_repro.report PATH…`: our results beside the paper's, then the four claims of SPEC §6.

Examples:
    python -m gmf_repro.report multirun/2026-01-01/12-00-00            # rich table(s) on the terminal
    python -m gmf_repro.report outputs --format markdown --plot robustness.png
    python -m gmf_repro.report runs/*/results.json --table table7 --format csv > table7.csv
"""
from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Sequence

from .claims import claims_text
from .tables import TABLE_NAMES, Table, build_tables, load_results, to_csv, to_latex, to_markdown, to_rich

FORMATS = ("rich", "markdown", "latex", "csv")


def render(tables: Sequence[Table], fmt: str = "markdown", claims: bool = True, width: int = 200) -> str:
    """The whole report as text. For csv the claims are left out (they go to stderr in the CLI)."""
    if fmt == "csv":
        return to_csv(tables)
    parts = []
    for table in tables:
        if fmt == "markdown":
            parts.append(to_markdown(table) + ("\n\n" + claims_text(table, markdown=True) if claims else ""))
        elif fmt == "latex":
            text = to_latex(table)
            if claims:
                text += "\n" + "\n".join("% " + line for line in claims_text(table).splitlines())
            parts.append(text)
        elif fmt == "rich":
            from rich.console import Console

            buf = io.StringIO()
            console = Console(file=buf, width=width, force_terminal=False, color_system=None)
            console.print(to_rich(table))
            if claims:
                console.print(claims_text(table), markup=False, highlight=False)
            parts.append(buf.getvalue().rstrip("\n"))
        else:
            raise ValueError(f"unknown format '{fmt}': choose one of {', '.join(FORMATS)}")
    return "\n\n".join(parts) + "\n"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m gmf_repro.report", description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.splitlines()[2:]))
    p.add_argument("paths", nargs="+", help="results.json files or run/multirun directories (searched recursively)")
    p.add_argument("--format", choices=FORMATS, default="rich", help="output format (default: rich terminal table)")
    p.add_argument("--table", choices=TABLE_NAMES, default=None,
                   help="put every run in this table (default: from each run's group/experiment/data)")
    p.add_argument("--plot", metavar="PATH.png", default=None, help="write a missing-modality robustness bar chart")
    p.add_argument("--all-rows", action="store_true", help="also list the paper's rows that have no run")
    p.add_argument("--no-claims", action="store_true", help="leave out the claims section")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        results = load_results(args.paths)
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not results:
        print(f"error: no results.json under {' '.join(args.paths)}", file=sys.stderr)
        return 2
    from .own import is_own_data, own_tables

    own = [] if args.table else [r for r in results if is_own_data(r)]
    paper_runs = [r for r in results if not any(r is o for o in own)]
    tables = (build_tables(paper_runs, args.table, all_rows=args.all_rows) if paper_runs else []) + own_tables(own)
    claims = not args.no_claims
    if args.format == "rich":
        from rich.console import Console

        console = Console()
        for table in tables:
            console.print(to_rich(table))
            if claims:
                console.print(claims_text(table), markup=False, highlight=False)
    else:
        sys.stdout.write(render(tables, args.format, claims))
        if args.format == "csv" and claims:
            print("\n\n".join(claims_text(t) for t in tables), file=sys.stderr)
    if args.plot:
        from .plots import plot_robustness

        try:
            print(f"wrote {plot_robustness(tables, args.plot)}", file=sys.stderr)
        except (RuntimeError, ValueError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

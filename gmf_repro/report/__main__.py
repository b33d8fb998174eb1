"""`python -m gmf_repro.report PATH…`: our results beside the paper's, then the paper's four claims.

Examples:
    python -m gmf_repro.report multirun/2026-01-01/12-00-00            # tables in the terminal, Markdown when piped
    python -m gmf_repro.report outputs --format markdown --plot robustness.png
    python -m gmf_repro.report runs/*/results.json --table table7 --format csv > table7.csv
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .build import FORMATS, Report, build_report, notes_text, render
from .claims import claims_text
from .protocol import protocol_text
from .render import to_rich
from .specs import LABELS_CHOICES, TABLE_NAMES

__all__ = ["main", "render"]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m gmf_repro.report", description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.splitlines()[2:]))
    p.add_argument("paths", nargs="+", help="results.json files or run/multirun directories (searched recursively)")
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="output format (default: rich tables in a terminal, markdown when piped)")
    p.add_argument("--table", choices=TABLE_NAMES, default=None,
                   help="put every run in this table (default: the table each run recorded; runs that recorded "
                        "none, and own data, get a table of their own conditions)")
    p.add_argument("--plot", metavar="PATH.png", default=None, help="write a missing-modality robustness bar chart")
    p.add_argument("--labels", choices=LABELS_CHOICES, default="learned",
                   help="FakeAVCeleb: score each run against the labels it learned (default; fusers: the clip's) "
                        "or per stream (A against the audio's real/fake, V the video's, AV the clip's)")
    p.add_argument("--all-rows", action="store_true", help="also list the paper's rows that have no run")
    p.add_argument("--no-claims", action="store_true", help="leave out the claims section")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        report = build_report(args.paths, args.table, all_rows=args.all_rows, labels=args.labels)
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not report.tables:
        print(f"error: no results.json under {' '.join(args.paths)}", file=sys.stderr)
        if report.notes:
            print(notes_text(report.notes, "rich"), file=sys.stderr)
        return 2
    fmt = args.format or ("rich" if sys.stdout.isatty() else "markdown")
    claims = not args.no_claims
    if fmt == "rich":
        show(report, claims)
    else:
        sys.stdout.write(render(report, fmt, claims))
        if fmt == "csv":
            extra = [notes_text(report.notes, "rich"), *(protocol_text(t) for t in report.tables)]
            extra += [claims_text(t) for t in report.tables] if claims else []
            print("\n\n".join(e for e in extra if e), file=sys.stderr)
    if args.plot:
        from .plots import plot_robustness

        try:
            print(f"wrote {plot_robustness(report.tables, args.plot)}", file=sys.stderr)
        except (RuntimeError, ValueError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
    return 0


def show(report: Report, claims: bool = True) -> None:
    """The report on this terminal, each table split to its width (the method column in every part)."""
    from rich.console import Console

    console = Console()
    if report.notes:
        console.print(notes_text(report.notes, "rich"), markup=False, highlight=False)
    for table in report.tables:
        console.print(to_rich(table, console.width))
        if protocol := protocol_text(table):
            console.print(protocol, markup=False, highlight=False)
        if claims:
            console.print(claims_text(table), markup=False, highlight=False)


if __name__ == "__main__":
    sys.exit(main())

"""Bar chart of missing-modality robustness, one panel per table: per row, a bar per condition (ours, mean
over seeds, error bars the 95% t-interval; none for one seed) and, only where the runs are on the paper's
dataset, the paper's number as a black tick. A cell without a value is marked "not run", a failed row
"FAILED": nothing is drawn at 0 that was not measured as 0."""
from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

from .aggregate import Table


def robustness_tables(tables: Sequence[Table]) -> list[Table]:
    """The tables with condition columns to draw (main and missing-modality ones) and at least one good run."""
    return [t for t in tables if len(t.spec.plot_columns) > 1 and any(r.status == "ok" for r in t.rows)]


def plot_robustness(tables: Sequence[Table], path: str | Path) -> Path:
    """One panel per table with condition columns; written to ``path`` (PNG)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:  # pragma: no cover - matplotlib is a declared dependency
        raise RuntimeError("--plot needs matplotlib: pip install matplotlib") from err

    panels = robustness_tables(tables)
    if not panels:
        raise ValueError("no table with a condition column per modality set (AV, A, V) and a successful run to plot")
    slots = max(len(t.rows) * (len(t.spec.plot_columns) + 1) for t in panels)
    width_in = min(max(8.0, 0.28 * slots + 3.0), 30.0)
    fig, axes = plt.subplots(len(panels), 1, figsize=(width_in, 5.2 * len(panels)), squeeze=False)
    chars = int(width_in * 11)  # title characters per line at 11 pt
    for ax, table in zip(axes[:, 0], panels, strict=True):
        _panel(ax, table, chars)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _panel(ax, table: Table, chars: int) -> None:  # noqa: ANN001 - a matplotlib Axes
    import matplotlib.pyplot as plt

    columns = table.spec.plot_columns
    n = len(columns)
    width = 0.8 / n
    colors = plt.get_cmap("tab10").colors
    top = max([1.0, *(s.mean + (s.half_width or 0) for r in table.rows if r.status == "ok"
                      for c in columns if (s := r.cells[c].stat) is not None),
               *(r.cells[c].paper for r in table.rows for c in columns if r.cells[c].paper is not None)])
    marks = []
    for i, col in enumerate(columns):
        xs = [j + (i - (n - 1) / 2) * width for j in range(len(table.rows))]
        stats = [r.cells[col].stat if r.status == "ok" else None for r in table.rows]
        drawn = [(x, s) for x, s in zip(xs, stats, strict=True) if s is not None]
        ax.bar([x for x, _ in drawn], [s.mean for _, s in drawn], width,
               yerr=[s.half_width or 0.0 for _, s in drawn], capsize=2, ecolor="0.2",
               color=colors[i % len(colors)], label=col)
        marks += [(x, "not run") for x, s, r in zip(xs, stats, table.rows, strict=True)
                  if s is None and r.status == "ok"]
        paper = [(x, r.cells[col].paper) for x, r in zip(xs, table.rows, strict=True) if r.cells[col].paper is not None]
        if paper:
            ax.scatter([x for x, _ in paper], [y for _, y in paper], marker="_", s=250, linewidths=2,
                       color="black", zorder=3, label="paper" if i == 0 else None)
    for x, text in marks:
        ax.text(x, 0.02 * top, text, rotation=90, ha="center", va="bottom", fontsize=8, color="0.35")
    for j, row in enumerate(table.rows):
        if row.status != "ok":
            ax.text(j, 0.05 * top, "FAILED" if row.status == "failed" else "not run", ha="center", va="bottom",
                    fontsize=10, color="tab:red" if row.status == "failed" else "0.35", fontweight="bold")
    long = max(len(row.label.split(" [")[0]) for row in table.rows) > 12
    names = [row.label.split(" [")[0] + (f"{' ' if long else chr(10)}[{row.n_runs} runs]" if row.n_runs > 1 else "")
             for row in table.rows]
    ax.set_xticks(range(len(table.rows)))
    ax.set_xticklabels(names, rotation=25 if long else 0, ha="right" if long else "center", fontsize=9,
                       rotation_mode="anchor")
    ax.set_xlim(-0.6, len(table.rows) - 0.4)
    ax.set_ylim(0, min(1.12 * top, 105.0))  # percentages: an interval reaching past 100 is cut at the frame
    ax.set_ylabel("AUC (%)" if "AUC" in table.spec.main else "accuracy (%)")
    what = ("bars: ours (mean over seeds; error bars: 95% t-interval, none for one seed)"
            + ("; black ticks: the paper" if any(r.cells[c].paper is not None for r in table.rows for c in columns)
               else ""))
    ax.set_title("\n".join([*textwrap.wrap(f"{table.name}: {table.spec.title}", chars), what]), fontsize=11,
                 loc="left")
    ax.legend(title="condition", fontsize=9, title_fontsize=9, loc="upper left", bbox_to_anchor=(1.005, 1.0))
    ax.grid(axis="y", alpha=0.3)

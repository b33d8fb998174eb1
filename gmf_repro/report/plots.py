"""Bar chart of missing-modality robustness: AV vs A vs V per fuser (ours as bars with 95% t-interval
error bars over seeds, the paper's as ticks)."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .tables import Table


def robustness_tables(tables: Sequence[Table]) -> list[Table]:
    """The tables that have A and V columns and at least one run with numbers."""
    return [t for t in tables if t.spec.missing is not None and any(r.status == "ok" for r in t.rows)]


def plot_robustness(tables: Sequence[Table], path: str | Path) -> Path:
    """One panel per table with A/V columns; a failed row keeps its slot, labelled FAILED, with no bars."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:  # pragma: no cover - matplotlib is a declared dependency
        raise RuntimeError("--plot needs matplotlib: pip install matplotlib") from err

    panels = robustness_tables(tables)
    if not panels:
        raise ValueError("no table with A/V/AV columns and a successful run to plot (tables 2 and 7 have them)")
    width_in = max(6.0, 1.1 * max(len(t.rows) for t in panels) + 2)
    fig, axes = plt.subplots(len(panels), 1, figsize=(width_in, 4 * len(panels)), squeeze=False)
    width = 0.27
    for ax, table in zip(axes[:, 0], panels, strict=True):
        col_a, col_v = table.spec.missing
        cols = [(table.spec.main, "AV", "tab:green"), (col_a, "A only", "tab:blue"), (col_v, "V only", "tab:orange")]
        for i, (col, label, color) in enumerate(cols):
            xs = [j + (i - 1) * width for j in range(len(table.rows))]
            stats = [r.cells[col].stat if r.status == "ok" else None for r in table.rows]
            ours = [0.0 if s is None else s.mean for s in stats]
            # 95% t-interval over seeds; no bar for a single seed (no interval)
            err = [0.0 if s is None or s.half_width is None else s.half_width for s in stats]
            ax.bar(xs, ours, width, yerr=err, capsize=3, ecolor="0.2", label=f"{label} (ours)", color=color)
            paper_x = [x for x, r in zip(xs, table.rows, strict=True) if r.cells[col].paper is not None]
            paper_y = [r.cells[col].paper for r in table.rows if r.cells[col].paper is not None]
            ax.scatter(paper_x, paper_y, marker="_", s=300, color="black", zorder=3,
                       label="paper" if i == 0 else None)
        names = [r.label.split(" [")[0] + ("\nFAILED" if r.status == "failed" else "")
                 + (f"\nn={r.n_runs}" if r.status == "ok" else "") for r in table.rows]
        ax.set_xticks(range(len(table.rows)))
        ax.set_xticklabels(names, rotation=30, ha="right")
        ax.set_ylabel("AUC (%)" if "AUC" in table.spec.main else "accuracy (%)")
        ax.set_title(f"{table.spec.name}: missing-modality robustness (error bars: 95% t-interval over seeds)")
        ax.set_ylim(0, 1.25 * max([1.0, *ax.get_ylim()[1:]]))  # headroom for the legend
        ax.legend(fontsize="small", ncol=4, loc="upper center")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path

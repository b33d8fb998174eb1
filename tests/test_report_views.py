"""Every view of the report: the terminal at any width, a pipe, the plot and the sweep's W&B report run are
built from the same report, and none of them loses the method column, a cell's status or a row."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from gmf_repro.report.__main__ import main
from gmf_repro.report.build import build_report, render

TIA = ("TIA", "TI", "TA", "IA", "T", "I", "A")


def save(folder: Path, overrides: list[str], res: dict[str, Any]) -> None:
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    (folder / "results.json").write_text(json.dumps(res))


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """A sweep of demo GMF at n=2 and n=4 and concat over two seeds on avsynth (no paper table recorded), plus
    the same fusers on three-modality features (seven conditions)."""
    out = tmp_path / "sweep"
    num = 0
    for seed in (1, 2):
        for fuser, typed, digest in (("gmf", ["fuser=demo/gmf", "fuser.n=2"], "g2"),
                                     ("gmf", ["fuser=demo/gmf", "fuser.n=4"], "g4"),
                                     ("concat", ["fuser=demo/concat"], "c")):
            av = {"AV": {"acc": 0.6 + 0.01 * seed}, "A": {"acc": 0.4}, "V": {"acc": 0.35}}
            save(out / str(num), [*typed, f"seed={seed}"],
                 {"fuser": fuser, "row": fuser, "table": None, "data": "avsynth", "seed": seed, "status": "ok",
                  "setting_digest": digest, "metrics": av, "complexity": {"params": 3_151_000, "flops": 6e6}})
            num += 1
            tia = {c: {"acc": 0.9 - 0.05 * (3 - len(c)) + 0.01 * seed} for c in TIA}
            save(out / str(num), [*typed, "data=features", f"seed={seed}"],
                 {"fuser": fuser, "row": fuser, "table": None, "data": "features", "seed": seed, "status": "ok",
                  "setting_digest": digest + "f", "metrics": tia, "complexity": {"params": 8020, "flops": 15400}})
            num += 1
    return out


def table_blocks(text: str) -> list[list[str]]:
    """The body rows (cells) of each rich table printed in ``text``."""
    blocks, current = [], None
    for line in text.splitlines():
        if line.startswith("┏"):
            current = []
            blocks.append(current)
        elif current is not None and line.startswith("│"):
            current.append([c.strip() for c in line.split("│")[1:-1]])
        elif line.startswith("└"):
            current = None
    return blocks


@pytest.mark.parametrize("width", [60, 80, 120, 200])
def test_the_method_column_survives_any_width(sweep: Path, width: int) -> None:
    text = render(build_report([sweep]), "rich", width=width)
    assert max(len(line) for line in text.splitlines()) <= width
    assert "┃┃" not in text and "││" not in text  # no blanked first column
    heads = [line for line in text.splitlines() if line.startswith("┃")]
    assert heads and all(h.startswith("┃ method ") for h in heads)  # in every part of every table
    assert set(TIA) <= {c.strip() for h in heads for c in h.split("┃")[2:-1]}  # every column is printed
    blocks = table_blocks(text)
    for block in blocks:  # each part of each table names its rows, whatever columns it holds
        assert [cells[0] for cells in block] == ["GMF n=2 [2 runs]", "GMF n=4 [2 runs]", "Concat [2 runs]"]
    assert len(blocks) >= 2 if width > 120 else len(blocks) > 2
    if width <= 80:  # seven condition columns do not fit 80 characters: continued tables
        assert "(continued: " in text


def test_a_pipe_gets_markdown_with_every_row_named(sweep: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(sweep)]) == 0  # stdout is not a terminal here, as in `python -m gmf_repro.report DIR | less`
    out = capsys.readouterr().out
    assert out.startswith("**About the runs read:**") and "┃" not in out and "│" not in out
    assert "| method | TIA | TI | TA | IA | T | I | A | CPU s | Params (M) | FLOPs (G) |" in out
    for label in ("GMF n=2 [2 runs]", "GMF n=4 [2 runs]", "Concat [2 runs]"):
        assert out.count(f"| {label} | ") == 2  # avsynth and features
    assert "#" not in "".join(line.split(" | ")[0] for line in out.splitlines() if line.startswith("| "))


def test_the_plot_marks_what_was_not_run_and_shows_the_paper_only_on_its_data(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from gmf_repro.report.plots import _panel, plot_robustness
    from gmf_repro.report.tables import build_tables

    def runs(data: str) -> list[dict[str, Any]]:
        gmf = {"fuser": "gmf", "table": "table2_frozen", "data": data, "seed": 1, "status": "ok",
               "metrics": {"AV": {"acc": 0.6}, "A": {"acc": 0.4}, "V": {"acc": 0.3}}}
        concat = {**gmf, "fuser": "concat"}  # no unimodal runs: the Baseline's A and V cells were not run
        failed = {**gmf, "fuser": "mbt", "status": "failed", "metrics": {}}
        return [gmf, concat, failed]

    legends = {}
    for data in ("vggsound_features", "avsynth"):
        (table,) = build_tables(runs(data))
        fig, ax = plt.subplots()
        _panel(ax, table, 80)
        texts = [t.get_text() for t in ax.texts]
        heights = sorted(round(p.get_height(), 2) for p in ax.patches)
        legends[data] = ax.get_legend_handles_labels()[1]
        plt.close(fig)
        assert texts.count("not run") == 2 and texts.count("FAILED") == 1  # Baseline's A, V; the MBT row
        assert 0.0 not in heights  # nothing drawn at 0 that was not measured
        assert ax.get_title(loc="left").replace("\n", " ").startswith(f"{table.name}: {table.spec.title}")  # whole
    assert "paper" in legends["vggsound_features"] and "paper" not in legends["avsynth"]
    png = plot_robustness(build_tables(runs("avsynth")), tmp_path / "robustness.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_one_report_for_the_cli_the_plot_and_the_wandb_run(sweep: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    from gmf_repro.hydra_callbacks import report_tables

    report, plain, chart = report_tables(sweep, tmp_path / "robustness.png")
    assert list(plain) == [t.name for t in build_report([sweep]).tables] == ["own_avsynth", "own_features"]
    assert chart is not None and chart.exists()  # own data gets its own panel, not Table 2's
    assert main([str(sweep), "--format", "csv", "--no-claims"]) == 0
    cli = {(r["table"], r["row"], r["column"]): r["ours"] for r in csv.DictReader(io.StringIO(capsys.readouterr().out))}
    for name, table in plain.items():
        assert not any(c.endswith((" paper", " diff")) for c in table["columns"])  # not the paper's data
        for row in table["rows"]:
            cells = dict(zip(table["columns"], row, strict=True))
            assert float(cli[(name, cells["row"], "TIA" if name == "own_features" else "AV")]) == pytest.approx(
                cells["TIA ours" if name == "own_features" else "AV ours"])
    assert main([str(sweep), "--plot", str(tmp_path / "cli.png"), "--format", "csv"]) == 0
    assert (tmp_path / "cli.png").exists()


def test_cells_beside_the_papers_keep_the_method_column_at_80(tmp_path: Path) -> None:
    for fuser, av in (("gmf", 0.31), ("mbt", 0.33), ("concat", 0.27)):
        for seed in (1, 2, 3):
            save(tmp_path / f"{fuser}{seed}", [f"seed={seed}"],
                 {"fuser": fuser, "row": fuser, "table": "table2_frozen", "data": "vggsound_features", "seed": seed,
                  "status": "ok", "setting_digest": fuser, "complexity": {"params": 5_250_048, "flops": 1e7},
                  "metrics": {"AV": {"acc": av + 0.01 * seed}, "A": {"acc": 0.2}, "V": {"acc": 0.21}}})
    text = render(build_report([tmp_path]), "rich", claims=False, width=80)
    assert max(len(line) for line in text.splitlines()) <= 80 and "(continued: " in text
    heads = [line for line in text.splitlines() if line.startswith("┃")]
    assert len(heads) == 2 and all(h.startswith("┃ method ") for h in heads)
    for label in ("Baseline (concat) [3 runs]", "MBT [3 runs]", "GMF [3 runs]"):
        assert text.count(f"│ {label} ") == 2  # in both parts
    assert "33.00 ± 2.48" in text and "31.64 (+1.36)" in text  # ours, then the paper's and the difference

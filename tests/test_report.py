"""The report: paper numbers against docs/paper.md, cells and differences in every format, FAILED rows, plot, claims."""
from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from gmf_repro.report import paper
from gmf_repro.report.__main__ import main, render
from gmf_repro.report.claims import check_claims
from gmf_repro.report.tables import Table, build_table, build_tables, load_results, row_key

PAPER_DOC = Path(__file__).resolve().parents[1] / "docs" / "paper.md"


# ------------------------------------------------------------------ paper.py against docs/paper.md §5
def spec_tables() -> dict[str, list[list[str]]]:
    """The first markdown table after each "### §5.n Table N:" heading of docs/paper.md, as lists of cells
    (header first): the numbers the report prints beside ours, written down twice, must agree."""
    tables: dict[str, list[list[str]]] = {}
    current = None
    for line in PAPER_DOC.read_text().splitlines():
        m = re.match(r"### §5\.\d Table (\d):", line)
        if m:
            current = f"table{m.group(1)}"
            tables[current] = []
        elif current and line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(set(c) <= {"-"} for c in cells):
                tables[current].append(cells)
        elif current and tables[current]:
            current = None
    return tables


def parse(cell: str) -> float | int | None:
    if cell == "-":
        return None
    if cell.endswith("M"):
        return round(float(cell[:-1]) * 1e6)
    if cell.endswith("G"):
        return round(float(cell[:-1]) * 1e9)
    return float(cell)


KEYS = {v: k for k, v in paper.LABELS.items()} | {"Baseline": "concat", "GMF-Perceiver": "g_perceiver"}


def test_table2_matches_paper_doc() -> None:
    header, *rows = spec_tables()["table2"]
    assert header == ["method", "frozen A", "frozen V", "frozen AV", "A(uni)", "trainable A", "V(uni)", "trainable V",
                      "trainable AV", "CPU s", "params", "FLOPs"]
    assert [KEYS[r[0]] for r in rows] == list(paper.TABLE2_FROZEN) == list(paper.TABLE2_TRAINABLE)
    for r in rows:
        key, v = KEYS[r[0]], [parse(c) for c in r[1:]]
        assert [paper.TABLE2_FROZEN[key][c] for c in paper.TABLE2_FROZEN_COLUMNS] == v[0:3]
        assert [paper.TABLE2_TRAINABLE[key][c] for c in paper.TABLE2_TRAINABLE_COLUMNS] == v[3:8]
        cplx = paper.PAPER_COMPLEXITY[key]
        assert [cplx["cpu_s"], cplx["params"], cplx["flops"]] == v[8:11]
    assert paper.PAPER_COMPLEXITY["gmf"]["params"] == 5_250_000
    assert isinstance(paper.PAPER_COMPLEXITY["gmf"]["flops"], int)


def test_table3_matches_paper_doc() -> None:
    header, *rows = spec_tables()["table3"]
    assert header[1:5] == list(paper.TABLE3_COLUMNS)
    seen = []
    for r in rows:
        name, setting = re.fullmatch(r"(.+) \((.+)\)", r[0]).groups()
        key = KEYS[name]
        seen.append((setting, key))
        assert [paper.TABLE3[setting][key][c] for c in paper.TABLE3_COLUMNS] == [parse(c) for c in r[1:5]]
        c = paper.TABLE3_COMPLEXITY[setting][key]
        assert [c["params"], c["flops"]] == [parse(x) for x in r[5:7]]
    assert sorted(seen) == sorted((s, k) for s in paper.TABLE3 for k in paper.TABLE3[s])


def test_table4_matches_paper_doc() -> None:
    header, *rows = spec_tables()["table4"]
    keys = [KEYS[h] for h in header[1:]]
    assert keys == list(paper.TABLE4)
    for r in rows:
        assert [paper.TABLE4[k][r[0]] for k in keys] == [parse(c) for c in r[1:]]


def test_table7_matches_paper_doc() -> None:
    header, *rows = spec_tables()["table7"]
    assert header[2:] == list(paper.TABLE7_COLUMNS)
    assert [KEYS[r[0]] for r in rows] == list(paper.TABLE7)
    for r in rows:
        key = KEYS[r[0]]
        assert paper.TABLE7_EXTRACTORS[key] == r[1]
        assert [paper.TABLE7[key][c] for c in paper.TABLE7_COLUMNS] == [parse(c) for c in r[2:]]


# ------------------------------------------------------------------ fake runs
def write(root: Path, name: str, **fields: Any) -> Path:
    run = {"fuser": name, "data": "vggsound_features", "task": "classification", "seed": 1,
           "experiment": "table2_frozen", "group": "table2_frozen", "table": "table2_frozen", "tags": [],
           "status": "ok", "timings": {"fit_s": 1.0}, "config_digest": "x", "versions": {"torch": "x"}}
    run.update(fields)
    path = root / f"{run['group'] or run['data']}" / name / "results.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(run))
    return path


def acc(a: float, v: float, av: float) -> dict[str, dict[str, float]]:
    return {"A": {"acc": a}, "V": {"acc": v}, "AV": {"acc": av}}


@pytest.fixture
def table2_runs(tmp_path: Path) -> Path:
    """GMF (AV 0.31), MBT (AV 0.33), concat, G-MBT; Perceiver failed, MISA has no metrics block."""
    write(tmp_path, "gmf", metrics=acc(0.21, 0.23, 0.31),
          complexity={"params": 5_250_048, "flops": 20_971_520, "cpu_latency_s": 0.0002, "threads": 1},
          analysis={"mutual_information": {"exchanged": 0.12, "unexchanged": 0.3, "inputs": 0.85}})
    write(tmp_path, "mbt", metrics=acc(0.15, 0.16, 0.33),
          complexity={"params": 37_830_656, "flops": 151_000_000, "cpu_latency_s": 0.01, "threads": 1})
    write(tmp_path, "concat", metrics=acc(0.22, 0.24, 0.27), complexity={"params": 0, "flops": 0})
    write(tmp_path, "g_mbt", metrics=acc(0.2, 0.22, 0.35), complexity={"params": 43_080_704, "flops": 1.6e8})
    write(tmp_path, "perceiver", status="failed", error="CUDA out of memory")
    write(tmp_path, "misa")  # no metrics block
    return tmp_path


def test_cells_hold_ours_paper_and_difference(table2_runs: Path) -> None:
    (table,) = build_tables(load_results([table2_runs]))
    assert table.spec.name == "table2_frozen"
    # paper order; concat's own zeroed-input numbers follow the Baseline row
    assert [r.key for r in table.rows] == ["concat", "concat_zeroed", "misa", "mbt", "perceiver", "gmf", "g_mbt"]
    gmf = table.row("gmf").cells
    assert gmf["AV"].ours == pytest.approx(31.0) and gmf["AV"].paper == 31.64
    assert gmf["AV"].diff == pytest.approx(31.0 - 31.64)
    assert gmf["A"].diff == pytest.approx(21.0 - 22.01)
    assert gmf["Params (M)"].ours == pytest.approx(5.250048) and gmf["Params (M)"].paper == pytest.approx(5.25)
    assert gmf["FLOPs (G)"].ours == pytest.approx(0.02097152) and gmf["FLOPs (G)"].paper == pytest.approx(0.01)
    assert gmf["CPU s"].ours == pytest.approx(0.0002) and gmf["CPU s"].paper == 0.001
    concat = table.row("concat").cells
    assert concat["Params (M)"].paper is None and concat["Params (M)"].diff is None
    # no unimodal runs given: the Baseline's A/V stay empty rather than showing concat with one input zeroed
    assert concat["A"].ours is None and concat["A"].paper == 23.31 and concat["AV"].ours == pytest.approx(27.0)
    assert table.row("concat_zeroed").cells["A"].ours == pytest.approx(22.0)
    assert table.row("perceiver").status == "failed" and table.row("misa").status == "failed"
    assert table.row("perceiver").cells["AV"].ours is None and table.row("perceiver").cells["AV"].paper == 33.41


def test_csv_values(table2_runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(table2_runs), "--format", "csv"]) == 0
    out = capsys.readouterr()
    rows = {(r["row"], r["column"]): r for r in csv.DictReader(io.StringIO(out.out))}
    av = rows[("gmf", "AV")]
    assert float(av["ours"]) == pytest.approx(31.0) and float(av["paper"]) == 31.64
    assert float(av["diff"]) == pytest.approx(-0.64)
    assert float(rows[("mbt", "V")]["diff"]) == pytest.approx(16.0 - 20.01)
    assert rows[("perceiver", "AV")]["status"] == "failed" and rows[("perceiver", "AV")]["ours"] == ""
    assert rows[("concat", "Params (M)")]["paper"] == "" and float(rows[("concat", "Params (M)")]["ours"]) == 0.0
    assert "The paper's claims" in out.err  # claims go to stderr so stdout stays plain CSV


@pytest.mark.parametrize("fmt", ["markdown", "latex", "rich"])
def test_text_formats(table2_runs: Path, fmt: str) -> None:
    text = render(build_tables(load_results([table2_runs])), fmt)
    assert "31.00" in text and "31.64" in text and "-0.64" in text  # GMF AV: ours, paper, difference
    assert "16.00" in text and "-4.01" in text  # MBT V
    assert "FAILED" in text and text.count("FAILED") >= 2 * 6  # two failed rows, every cell
    assert "1. GMF is close" in text and "4. GMF reduces mutual information" in text
    if fmt == "markdown":
        assert ("| GMF | 21.00 (n=1, no interval) / 22.01 (-1.01) | 23.00 (n=1, no interval) / 24.32 (-1.32) | "
                "31.00 (n=1, no interval) / 31.64 (-0.64) |") in text
        assert "| Perceiver FAILED [1 failed] | FAILED / 17.98 |" in text
    if fmt == "latex":
        assert r"\begin{tabular}" in text and r"GMF & 21.00 (n=1, no interval) / 22.01 (-1.01)" in text
        assert r"accuracy \%" in text


def test_cli_rich_and_table_flag(table2_runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(table2_runs)]) == 0
    out = capsys.readouterr().out
    assert "Table 2" in out and "FAILED" in out and "The paper's claims" in out
    assert main([str(table2_runs), "--table", "table2_trainable", "--format", "markdown", "--all-rows"]) == 0
    out = capsys.readouterr().out
    assert "A(uni)" in out and "AVoiD-DF (not run)" in out
    assert main([str(table2_runs / "nowhere")]) == 2


def test_plot_writes_a_png(table2_runs: Path, tmp_path: Path) -> None:
    png = tmp_path / "plots" / "robustness.png"
    assert main([str(table2_runs), "--format", "csv", "--plot", str(png), "--no-claims"]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.pyplot as plt

    image = plt.imread(png)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


def test_unreadable_results_file_is_a_failed_row(tmp_path: Path) -> None:
    bad = tmp_path / "gmf" / "results.json"
    bad.parent.mkdir()
    bad.write_text("{not json")
    (table,) = build_tables(load_results([tmp_path]))
    assert table.row("gmf").status == "failed"


def seeds(root: Path, name: str, av: list[float], a: list[float] | None = None, v: list[float] | None = None,
          setting: str = "s", overrides: tuple[str, ...] = (), **fields: Any) -> None:
    """One run per seed 1..len(av) of one setting (accuracies as fractions); with ``overrides``, the job's
    ``.hydra/overrides.yaml`` beside its results.json, as Hydra writes it."""
    for i, value in enumerate(av):
        metrics = acc(a[i] if a else value - 0.1, v[i] if v else value - 0.1, value)
        path = write(root / f"{setting}-seed{i + 1}", name, seed=i + 1, setting_digest=setting, metrics=metrics,
                     **fields)
        if overrides:
            (path.parent / ".hydra").mkdir()
            (path.parent / ".hydra" / "overrides.yaml").write_text(
                "".join(f"- {o}\n" for o in (*overrides, f"seed={i + 1}")))


def test_aggregation_matches_a_hand_computed_t_interval(tmp_path: Path) -> None:
    seeds(tmp_path, "gmf", [0.30, 0.32, 0.34])
    (table,) = build_tables(load_results([tmp_path]))
    cell = table.row("gmf").cells["AV"]
    # mean 32, sample sd 2, t_{0.975, 2 dof} = 4.302653: half-width 4.302653 * 2 / sqrt(3) = 4.968275
    assert cell.n == 3 and cell.stat.mean == pytest.approx(32.0)
    assert cell.stat.low == pytest.approx(32.0 - 4.968275, abs=1e-5)
    assert cell.stat.high == pytest.approx(32.0 + 4.968275, abs=1e-5)
    text = render([table], "markdown")
    assert "| GMF [3 runs] | " in text and "32.00 ± 4.97 (n=3) / 31.64 (+0.36)" in text
    rows = {(r["row"], r["column"]): r for r in csv.DictReader(io.StringIO(render([table], "csv")))}
    assert float(rows[("gmf", "AV")]["ci_low"]) == pytest.approx(27.031725, abs=1e-5)
    assert rows[("gmf", "AV")]["n"] == "3"


def test_single_seed_says_no_interval(tmp_path: Path) -> None:
    seeds(tmp_path, "gmf", [0.31])
    (table,) = build_tables(load_results([tmp_path]))
    cell = table.row("gmf").cells["AV"]
    assert cell.n == 1 and cell.stat.low is None
    assert "31.00 (n=1, no interval) / 31.64 (-0.64)" in render([table], "markdown")


def test_runs_differing_in_a_setting_are_not_averaged_and_named_by_it(tmp_path: Path) -> None:
    seeds(tmp_path, "gmf", [0.30, 0.32], setting="1epoch00", overrides=("fuser=gmf", "trainer.max_epochs=1"))
    seeds(tmp_path, "gmf", [0.40, 0.42], setting="3epochs0", overrides=("fuser=gmf", "trainer.max_epochs=3"))
    (table,) = build_tables(load_results([tmp_path]))
    rows = [r for r in table.rows if r.fuser == "gmf"]
    assert [(r.setting, r.n_runs, r.cells["AV"].ours) for r in rows] == [
        ("1epoch00", 2, pytest.approx(31.0)), ("3epochs0", 2, pytest.approx(41.0))]
    # the label is what sets the setting apart (the seed and everything they share left out), no digest
    assert [(r.key, r.label) for r in rows] == [("gmf max_epochs=1", "GMF max_epochs=1"),
                                                ("gmf max_epochs=3", "GMF max_epochs=3")]
    text = render([table], "markdown")
    assert "| GMF max_epochs=1 [2 runs] |" in text and "1epoch" not in text


def test_settings_whose_difference_is_not_recorded_are_numbered_and_said_so(tmp_path: Path) -> None:
    seeds(tmp_path, "gmf", [0.30, 0.32], setting="1epoch00")  # results.json without their run folders
    seeds(tmp_path, "gmf", [0.40, 0.42], setting="3epochs0")
    (table,) = build_tables(load_results([tmp_path]))
    assert [r.label for r in table.rows if r.fuser == "gmf"] == ["GMF setting 1", "GMF setting 2"]
    assert any(n.startswith("GMF: 2 settings that differ in something no .hydra/overrides.yaml") for n in
               table.notes_above)


def test_failed_jobs_are_counted_in_their_row(tmp_path: Path) -> None:
    seeds(tmp_path, "gmf", [0.30, 0.32])
    # the record a failed job writes (gmf_repro/__main__.py): its setting, no metrics
    write(tmp_path / "s-seed3", "gmf", seed=3, setting_digest="s", status="failed", metrics={}, error="OOM")
    (table,) = build_tables(load_results([tmp_path]))
    row = table.row("gmf")
    assert (row.status, row.n_runs, row.n_failed) == ("ok", 2, 1) and row.cells["AV"].ours == pytest.approx(31.0)
    assert "| GMF [2 runs, 1 failed] |" in render([table], "markdown")


def test_baseline_row_takes_a_and_v_from_the_unimodal_runs(tmp_path: Path) -> None:
    seeds(tmp_path, "concat", [0.40, 0.42], a=[0.10, 0.12], v=[0.20, 0.22], setting="av")
    for i, (a, v) in enumerate(((0.30, 0.33), (0.32, 0.35))):
        write(tmp_path / f"ua{i}", "concat", seed=i + 1, setting_digest="ua", dims={"audio": 512}, row="unimodal_A",
              metrics={"A": {"acc": a}}, tags=["claims", "unimodal", "audio"])
        write(tmp_path / f"uv{i}", "concat", seed=i + 1, setting_digest="uv", dims={"video": 512}, row="unimodal_V",
              metrics={"V": {"acc": v}}, tags=["claims", "unimodal", "video"])
    (table,) = build_tables(load_results([tmp_path]))
    base, zeroed = table.row("concat").cells, table.row("concat_zeroed").cells
    assert base["A"].ours == pytest.approx(31.0) and base["V"].ours == pytest.approx(34.0) and base["A"].n == 2
    assert base["AV"].ours == pytest.approx(41.0) and base["A"].paper == 23.31
    assert zeroed["A"].ours == pytest.approx(11.0) and zeroed["A"].paper is None  # concat with video zeroed
    assert [r.key for r in table.rows] == ["concat", "concat_zeroed"]  # the unimodal runs are no rows of their own
    assert "from the unimodal runs" in render([table], "markdown")
    # Table 2 trainable: the same runs fill A(uni)/V(uni); the Baseline's A/V stay "-" as in the paper
    (trainable,) = build_tables(load_results([tmp_path]), table="table2_trainable")
    cells = trainable.row("concat").cells
    assert cells["A(uni)"].ours == pytest.approx(31.0) and cells["A"].ours is None


def test_the_report_says_what_it_compares(tmp_path: Path) -> None:
    seeds(tmp_path, "gmf", [0.3, 0.32], data="avsynth", dims={"audio": 8, "video": 8},
          complexity={"params": 123, "flops": 456, "cpu_latency_s": 0.1,
                      "paper_size": {"params": 1392, "flops": 2560}})  # as the run records it
    (table,) = build_tables(load_results([tmp_path]))
    assert table.name == "table2_frozen@avsynth" and not table.vs_paper
    assert any(n.startswith("These runs are on avsynth, not VGGSound: the paper's numbers are not shown") for n in
               table.notes_above)
    assert any(n.startswith("Not at paper size: GMF") for n in table.notes_above)
    # other data: no paper number, no difference in any cell or format
    assert all(c.paper is None and c.diff is None for r in table.rows for c in r.cells.values())
    text = render([table], "markdown")
    assert "| GMF [2 runs] | 21.00 ± 12.71 (n=2) | " in text and "22.01" not in text and " / " not in text
    cells = table.row("gmf").cells
    # paper-size GMF at 8/8 (n=4, beta=1/2): the params of conf/fuser/gmf.yaml the run recorded, not its 123; no CPU s
    assert cells["Params (M)"].ours == pytest.approx(1e-6 * 1392) and cells["CPU s"].ours is None
    (paper_data,) = build_tables([{**r, "data": "vggsound_features"} for r in load_results([tmp_path])])
    assert not any("not VGGSound" in n for n in paper_data.notes_above)
    assert paper_data.vs_paper and paper_data.row("gmf").cells["AV"].diff == pytest.approx(31.0 - 31.64)


# ------------------------------------------------------------------ other tables and row mapping
def test_rows_are_the_recorded_ones_and_nothing_is_guessed() -> None:
    assert row_key({"fuser": "gmf", "row": "gmf@128", "dims": {"image": 128, "video": 4096}}) == "gmf@128"
    assert row_key({"fuser": "gmf", "dims": {"image": 128, "video": 4096}}, "table3") == "gmf"  # no row: the fuser
    assert row_key({"fuser": "gmf", "experiment": "fakeavceleb_mae", "tags": ["mae"]}, "table7") == "gmf"
    # a run that recorded no table goes to our own runs on its data, never to a paper table named after its group
    runs = [{"fuser": "gmf", "data": "fakeavceleb", "group": "table7", "experiment": "table4",
             "metrics": {"AV": {"acc": 0.9}, "A": {"acc": 0.5}}}]
    (table,) = build_tables(runs)
    assert table.name == "own_fakeavceleb" and [c.name for c in table.spec.columns][:2] == ["AV", "A"]


def test_retrieval_table_keeps_map_as_fraction(tmp_path: Path) -> None:
    write(tmp_path, "gmf", group="table3", table="table3", row="gmf@128", task="retrieval", data="activitynet",
          dims={"image": 128, "video": 128},
          metrics={"IV": {"map@10": 0.30, "map@20": 0.29, "map@50": 0.28, "map@100": 0.27}},
          complexity={"params": 329_472, "flops": 600_000})
    (table,) = build_tables(load_results([tmp_path]))
    cells = table.row("gmf@128").cells
    assert table.spec.name == "table3" and table.row("gmf@128").label == "GMF (128)"
    assert cells["mAP@10"].ours == pytest.approx(0.30) and cells["mAP@10"].diff == pytest.approx(0.30 - 0.349)
    assert cells["Params (M)"].ours == pytest.approx(0.329472) and cells["Params (M)"].paper == pytest.approx(0.32)
    assert "0.300 (n=1, no interval) / 0.349 (-0.049)" in render([table], "markdown")


def test_fakeavceleb_table7_scales_auroc(tmp_path: Path) -> None:
    metrics = {c: {"acc": 0.9, "auroc": a} for c, a in (("A", 0.6), ("V", 0.7), ("AV", 0.8))}
    write(tmp_path, "gmf", group=None, table="table7", experiment="fakeavceleb", data="fakeavceleb", metrics=metrics)
    (table,) = build_tables(load_results([tmp_path]))
    cells = table.row("gmf").cells
    assert table.spec.name == "table7"
    assert cells["AUC AV"].ours == pytest.approx(80.0) and cells["AUC AV"].diff == pytest.approx(80.0 - 91.88)
    assert cells["ACC V"].ours == pytest.approx(90.0) and cells["ACC V"].paper == 85.33
    (t4,) = build_tables(load_results([tmp_path]), table="table4")
    assert t4.row("gmf").cells["AUC"].ours == pytest.approx(80.0) and t4.row("gmf").cells["AUC"].paper == 91.88


def test_trainable_uni_probe_columns(tmp_path: Path) -> None:
    metrics = {**acc(0.2, 0.22, 0.33), "A(uni)": {"acc": 0.21}, "V(uni)": {"acc": 0.23}}
    write(tmp_path, "gmf", group="table2_trainable", table="table2_trainable", metrics=metrics)
    (table,) = build_tables(load_results([tmp_path]))
    cells = table.row("gmf").cells
    assert cells["A(uni)"].ours == pytest.approx(21.0) and cells["A(uni)"].paper == 21.83
    assert cells["V(uni)"].ours == pytest.approx(23.0) and cells["V(uni)"].paper == 23.93


# ------------------------------------------------------------------ claims
def verdicts(table) -> dict[int, tuple[str, str]]:
    return {c["claim"]: (c["ours"].verdict, c["paper"].verdict) for c in check_claims(table)}


def details(table) -> dict[int, str]:
    return {c["claim"]: c["ours"].detail for c in check_claims(table)}


def test_single_seed_claims_are_inconclusive_with_their_numbers(table2_runs: Path) -> None:
    (table,) = build_tables(load_results([table2_runs]))
    claims = {c["claim"]: c["ours"] for c in check_claims(table)}
    assert {n: (c.verdict, c.n, c.means_say) for n, c in claims.items()} == {
        1: ("inconclusive", 1, "yes"), 2: ("inconclusive", 1, "no"), 3: ("inconclusive", 1, "yes"),
        4: ("not testable", None, None)}
    # 1: GMF AV 31.0 vs best MBT 33.0 -> gap 2.0 within the tolerance of 2, params 5.25M < 37.83M; concat (27.0,
    # no parameters) is 4 points below GMF, but one seed cannot tell it from one as accurate
    assert "GMF - MBT -2.00 (n=1, no interval)" in claims[1].detail
    assert "params 5.25M vs MBT 37.8M (13.9%)" in claims[1].detail
    assert "params 5.25M vs Baseline (concat) 0 (no fusion parameters)" in claims[1].detail
    # 2: drops GMF 10/8, concat with one input zeroed 5/3
    assert "AV->A drop: GMF 10.00 (n=1, no interval) vs Concat, one input zeroed 5.00" in claims[2].detail
    assert "inconclusive (n=1; the means alone would say no)" in str(claims[2])
    # 3: G-MBT 35 vs MBT 33, mean A/V 21 vs 15.5; 4: no run at initialisation, no cross-entropy: it says so
    assert "+2.00 (n=1, no interval)" in claims[3].detail and "+5.50 (n=1, no interval)" in claims[3].detail
    assert claims[4].detail == ("MI not testable: no run of GMF at initialisation (conf/claims_row/gmf_init.yaml) "
                                "with its seeds; entropy not testable: no test cross-entropy (AV ce) recorded")


def five_seeds(root: Path, gmf_av: list[float], mbt_av: list[float]) -> Table:
    """GMF, MBT and G-MBT over seeds 1-5 (AV as given; A = V = AV - 0.1 for GMF, AV - 0.2 for the others)."""
    seeds(root, "gmf", gmf_av, complexity={"params": 5_250_048, "flops": 1e7},
          analysis={"mutual_information": {"exchanged": 0.1, "inputs": 0.5}})
    seeds(root, "mbt", mbt_av, a=[x - 0.2 for x in mbt_av], v=[x - 0.2 for x in mbt_av],
          complexity={"params": 37_830_656, "flops": 1.5e8})
    seeds(root, "g_mbt", [x + 0.03 for x in mbt_av], a=[x - 0.1 for x in mbt_av], v=[x - 0.1 for x in mbt_av])
    (table,) = build_tables(load_results([root]))
    return table


def test_claim_yes_with_separated_seeds_becomes_inconclusive_when_they_overlap(tmp_path: Path) -> None:
    # GMF 1 point below MBT on every seed (tolerance 2): the paired gap's interval is far from -2
    separated = five_seeds(tmp_path / "a", [0.30, 0.31, 0.32, 0.33, 0.34], [0.31, 0.32, 0.33, 0.34, 0.35])
    claim = check_claims(separated)[0]["ours"]
    assert (claim.verdict, claim.n) == ("yes", 5)
    assert "GMF - MBT -1.00, 95% CI [-1.00, -1.00] (n=5, paired)" in claim.detail
    # the same means, but the paired gap swings from +2 to -4 across seeds: its interval straddles -2
    overlapping = five_seeds(tmp_path / "b", [0.33, 0.29, 0.35, 0.29, 0.34], [0.31, 0.33, 0.33, 0.33, 0.35])
    claim = check_claims(overlapping)[0]["ours"]
    assert (claim.verdict, claim.n, claim.means_say) == ("inconclusive", 5, "yes")
    assert str(claim).startswith("inconclusive (n=5; the means alone would say yes): GMF AV 32.00 ± ")
    verdicts_ = {c["claim"]: c["ours"].verdict for c in check_claims(separated)}
    # 2: GMF drops 10 on every seed, MBT 20; 3: G-MBT +3 on AV and +10 on A/V every seed; 4: no reference runs
    assert verdicts_ == {1: "yes", 2: "yes", 3: "yes", 4: "not testable"}


def test_claims_flip_when_numbers_do(tmp_path: Path) -> None:
    seeds(tmp_path, "gmf", [0.30, 0.30, 0.31], a=[0.29, 0.29, 0.30], v=[0.29, 0.29, 0.30], complexity={"params": 5e6},
          analysis={"mutual_information": {"exchanged": 0.9, "inputs": 0.5}})
    # the same GMF at initialisation: its exchanged parts shared less information than after training
    seeds(tmp_path, "gmf", [0.1] * 3, row="gmf_init", setting="init",
          analysis={"mutual_information": {"exchanged": 0.5, "inputs": 0.5}})
    seeds(tmp_path, "mbt", [0.35, 0.36, 0.35], a=[0.2] * 3, v=[0.2] * 3, complexity={"params": 3.8e7})
    seeds(tmp_path, "g_mbt", [0.34, 0.34, 0.33], a=[0.1] * 3, v=[0.1] * 3)
    (table,) = build_tables(load_results([tmp_path]))
    v, d = verdicts(table), details(table)
    assert v[1][0] == "no" and "GMF - MBT -5.00, 95% CI [-7.48, -2.52] (n=3, paired), close if >= -2" in d[1]
    assert v[2][0] == "yes" and "AV->A drop: GMF 1.00 ± 0.00 (n=3) vs MBT 15.33" in d[2]
    assert v[3][0] == "no"  # G-MBT below MBT on AV on every seed, and on the A/V mean
    assert v[4][0] == "no" and "MI no: " in d[4] and "initialisation - trained -0.400, 95% CI" in d[4]


def test_claims_not_testable_without_the_runs(tmp_path: Path) -> None:
    write(tmp_path, "gmf", metrics={"AV": {"acc": 0.3}})
    (table,) = build_tables(load_results([tmp_path]))
    assert {n: o for n, (o, _) in verdicts(table).items()} == {1: "not testable", 2: "not testable",
                                                                3: "not testable", 4: "not testable"}


def test_claims_on_the_papers_own_numbers() -> None:
    frozen = build_table([], "table2_frozen", all_rows=True)
    v = {n: p for n, (_, p) in verdicts(frozen).items()}
    assert v == {1: "yes", 2: "no", 3: "yes", 4: "not testable"}  # UAVM and concat lose less than GMF
    trainable = build_table([], "table2_trainable", all_rows=True)
    v = {n: p for n, (_, p) in verdicts(trainable).items()}
    assert v[1] == "no" and v[2] == "yes" and v[3] == "yes"  # Perceiver's 35.21 is 3.2 points above GMF
    t7 = build_table([], "table7", all_rows=True)
    assert verdicts(t7)[3][1] == "yes"  # G-Perceiver vs Perceiver on AUC
    t3 = build_table([], "table3", all_rows=True)
    assert verdicts(t3)[1][1] == "mixed"  # GMF(128) small, GMF(128-4096) bigger than MAP-IVR


def test_paper_complexity_lookup_by_dims() -> None:
    assert paper.paper_complexity("gmf", [512, 512]) == {"params": 5_250_000, "flops": 10_000_000, "cpu_s": 0.001}
    assert paper.paper_complexity("gmf", [4096, 128])["params"] == 119_210_000
    assert paper.paper_complexity("gmf", [128, 128]) == {"params": 320_000, "flops": 0, "cpu_s": None}
    assert paper.paper_complexity("concat", [512, 512]) == {}  # "-" in the paper
    assert paper.paper_complexity("mbt", [64, 32]) == {}

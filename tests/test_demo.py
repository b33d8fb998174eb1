"""`make demo`: its sweep covers every demo-size fuser, and its table (the report's ``demo`` spec) shows
A, V, AV, the drops, complexity and fit time of each run, a failed job as a FAILED row with its error."""
from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra._internal.utils import create_config_search_path
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf
from omegaconf.errors import InterpolationResolutionError

import gmf_repro.config
from gmf_repro.config import CONF_DIR, compose, group_options
from gmf_repro.demo import summary_table
from gmf_repro.report.__main__ import render
from gmf_repro.report.render import to_csv


def demo_sweep_jobs() -> list[list[str]]:
    """The jobs Hydra's BasicSweeper makes of experiment=demo's sweeper params, as `-m` runs them."""
    params = compose(["experiment=demo"], return_hydra_config=True).hydra.sweeper.params
    loader = ConfigLoaderImpl(config_search_path=create_config_search_path(str(CONF_DIR)))
    overrides = OverridesParser.create(config_loader=loader).parse_overrides([f"{k}={v}" for k, v in params.items()])
    (batch,) = BasicSweeper.split_arguments(overrides, None)
    return batch


def test_demo_sweeps_every_file_in_the_demo_folder() -> None:
    files = sorted(p.stem for p in (CONF_DIR / "fuser" / "demo").glob("*.yaml"))
    assert len(files) >= 10 and files == group_options("fuser/demo")
    assert demo_sweep_jobs() == [[f"fuser=demo/{name}"] for name in files]


def test_glob_resolver_reads_the_folder(tmp_path, monkeypatch) -> None:
    # a new demo-size file joins the sweep with no other edit; a paper-size one does not
    for name in ("fuser/demo/new_fuser.yaml", "fuser/demo/gmf.yaml", "fuser/gmf.yaml"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("{}\n")
    monkeypatch.setattr(gmf_repro.config, "CONF_DIR", tmp_path)
    assert OmegaConf.create({"f": "${gmf.glob:fuser,demo/*}"}).f == "demo/gmf,demo/new_fuser"
    with pytest.raises(InterpolationResolutionError, match="no fuser option matches 'small/\\*'"):
        _ = OmegaConf.create({"f": "${gmf.glob:fuser,small/*}"}).f


# ------------------------------------------------------------------ the table
def run(fuser: str, a: float, v: float, av: float, seed: int = 1, **fields: Any) -> dict[str, Any]:
    return {"fuser": fuser, "data": "avsynth", "task": "classification", "seed": seed, "experiment": "demo",
            "group": "demo", "status": "ok", "setting_digest": fuser,
            "metrics": {"AV": {"acc": av}, "A": {"acc": a}, "V": {"acc": v}},
            "complexity": {"params": 5_250_048, "flops": 10_485_760, "cpu_latency_s": 0.0016567, "threads": 1},
            "timings": {"fit_s": 8.051, "test_s": 0.5}, **fields}


RUNS = [
    run("my_fuser", 0.40, 0.41, 0.60),  # a fuser the paper lacks: after the paper's rows
    run("gmf", 0.467, 0.501, 0.693),
    {"fuser": "mbt", "data": "avsynth", "seed": 1, "experiment": "demo", "group": "demo", "status": "failed",
     "error": "RuntimeError: CUDA out of memory\nTraceback (most recent call last): ...", "metrics": {},
     "setting_digest": "mbt"},
    run("concat", 0.469, 0.489, 0.71, complexity={"params": 0, "flops": 0, "cpu_latency_s": 4.7e-6}),
    run("concat", 0.471, 0.491, 0.73, seed=2, complexity={"params": 0, "flops": 0, "cpu_latency_s": 4.7e-6},
        timings={"fit_s": 0.9}),
]


def rich_rows(text: str) -> dict[str, list[str]]:
    """label -> cells of each one-line row of a rich table rendered as plain text."""
    rows = {}
    for line in text.splitlines():
        parts = [p.strip() for p in line.replace("┃", "│").split("│")[1:-1]]
        if parts and parts[0]:
            rows[parts[0]] = parts[1:]
    return rows


def test_demo_table_shows_drops_complexity_fit_time_and_failures() -> None:
    table = summary_table(RUNS, 42.4)
    assert [r.key for r in table.rows] == ["concat", "mbt", "gmf", "my_fuser"]  # paper order, then the rest
    text = render([table], "rich", claims=False, width=260)  # every row on one line
    assert "42 s in all" in text and "Data: avsynth" in text and " / " not in text
    rows = rich_rows(text)
    assert [c.split(" ")[0] for c in rows["method"]] == ["A", "V", "AV", "AV-A", "AV-V", "Params", "FLOPs",
                                                         "CPU", "fit"]
    # one seed: the value alone, accuracy in %, the drops AV - A and AV - V, the run's own complexity
    assert rows["gmf"] == ["46.70", "50.10", "69.30", "22.60", "19.20", "5.250", "10.49", "0.00166", "8.1"]
    assert rows["my_fuser"][3:5] == ["20.00", "19.00"]
    # two seeds: mean ± 95% t-interval (n=2); complexity is the same for both and shown alone
    concat = rows["concat [2 runs]"]
    assert concat[2].startswith("72.00 ± ") and concat[2].endswith("(n=2)")
    assert concat[3].startswith("25.00 ± ") and concat[5:8] == ["0.000", "0.00", "0.00000"]
    assert concat[8].startswith("4.5 ± ")
    # the failed job: a FAILED row that names its error (first line)
    (label,) = [k for k in rows if k.startswith("mbt")]
    assert label == "mbt FAILED [1 failed]: RuntimeError: CUDA out of memory"
    assert rows[label] == ["FAILED"] * 9
    # the CSV keeps full precision: a drop is exactly AV minus A
    cells = {(c["row"], c["column"]): c for c in csv.DictReader(io.StringIO(to_csv([table])))}
    assert float(cells[("gmf", "AV-A")]["ours"]) == pytest.approx(100 * (0.693 - 0.467))
    assert float(cells[("gmf", "fit s")]["ours"]) == pytest.approx(8.051)
    assert cells[("gmf", "AV")]["paper"] == "" and cells[("mbt", "AV")]["status"] == "failed"


def test_demo_table_in_markdown_has_no_paper_cells() -> None:
    text = render([summary_table(RUNS, 1.0)], "markdown", claims=False)
    assert "| gmf | 46.70 | 50.10 | 69.30 | 22.60 | 19.20 | 5.250 | 10.49 | 0.00166 | 8.1 |" in text
    assert "| mbt FAILED [1 failed]: RuntimeError: CUDA out of memory | FAILED |" in text


def test_make_demo_runs_its_sweep_and_prints_the_table(tmp_path, monkeypatch, capsys) -> None:
    """`python -m gmf_repro.demo` end to end on one fuser, one short epoch: the sweep as a subprocess, then the
    table from its results.json (the reading side broke once without a test seeing it)."""
    from gmf_repro.demo import main

    monkeypatch.chdir(tmp_path)
    code = main(["hydra.sweeper.params.fuser=demo/gmf", "trainer.max_epochs=1", "data.n_train=300",
                 "data.n_test=100", "logger=none", "eval.latency_repeats=2", "eval.mutual_information=false"])
    out = capsys.readouterr().out
    assert code == 0, out[-2000:]
    (sweep,) = (tmp_path / "outputs" / "demo").iterdir()
    assert (sweep / "0" / "results.json").exists()
    assert "Demo-size fusers" in out and "│ gmf " in out
    assert f"report: python -m gmf_repro.report outputs/demo/{sweep.name}" in out

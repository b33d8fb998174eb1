"""experiment=claims: the rows and seeds it sweeps, and a tiny sweep that ends with the report."""
from __future__ import annotations

import json

from conftest import TINY, cli

from gmf_repro.config import compose


def test_claims_sweeps_seven_fusers_gmf_untrained_two_unimodal_baselines_over_five_seeds() -> None:
    cfg = compose(["experiment=claims"], return_hydra_config=True)
    row = compose(["experiment=claims", "+claims_row=unimodal_video", "seed=3"])
    paper = compose(["experiment=claims", "+claims_row=mbt", "claims_size=paper"])
    demo = compose(["experiment=claims", "+claims_row=mbt"])
    params = cfg.hydra.sweeper.params
    assert params["seed"] == "1,2,3,4,5" and cfg.hydra.mode.name == "MULTIRUN"
    assert params["+claims_row"].split(",") == ["concat", "drfuse", "mbt", "perceiver", "gmf", "gmf_init", "g_mbt",
                                                "g_perceiver", "unimodal_audio", "unimodal_video"]
    assert cfg.hydra.callbacks.report._target_ == "gmf_repro.report.callback.ReportAtEnd"
    assert cfg.labels.data == "avsynth" and cfg.data.specific_share == 0.2
    assert list(row.data.use) == ["video"] and list(row.eval.conditions) == ["V"] and row.data.seed == 3
    assert demo.fuser.d_model == 128 and paper.fuser.d_model == 512  # demo size here, paper size on real data
    # claim 4's reference: the same GMF, data and seed, never trained, in a row of its own
    gmf, init = (compose(["experiment=claims", f"+claims_row={r}", "seed=2"]) for r in ("gmf", "gmf_init"))
    assert init.trainer.limit_train_batches == 0 and (init.report.row, gmf.report.row) == ("gmf_init", "gmf")
    assert init.fuser == gmf.fuser and init.data == gmf.data and init.seed == gmf.seed


def test_tiny_claims_sweep_ends_with_the_report(tmp_path) -> None:
    out = tmp_path / "sweep"
    proc = cli("gmf_repro", "-m", "experiment=claims", *TINY, "data.n_train=300", "data.n_test=200",
               "trainer.max_epochs=1", "+claims_row=concat,gmf,gmf_init,unimodal_audio,unimodal_video", "seed=1,2",
               "eval.mutual_information=true", f"hydra.sweep.dir={out}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = [json.loads(p.read_text()) for p in sorted(out.rglob("results.json"))]
    assert len(results) == 10 and len({r["setting_digest"] for r in results}) == 5  # 5 rows x 2 seeds
    report = (out / "report.md").read_text()
    assert report in proc.stdout and (out / "robustness.png").stat().st_size > 1000
    assert "| Baseline (concat) [2 runs] |" in report and "| Concat, one input zeroed [2 runs] |" in report
    assert "| GMF, untrained (at initialisation) [2 runs] |" in report
    assert "These runs are on avsynth, not VGGSound" in report
    claim4 = report.split("4. GMF reduces mutual information and entropy in feature representations: ")[1]
    assert "(n=2" in claim4.splitlines()[0] and "initialisation - trained" in claim4.splitlines()[0]

"""End to end on the embedded data: the job learns, is reproducible, and writes the documented results."""
import json

import pytest

from gmf_repro.errors import UserError
from gmf_repro.run import run


@pytest.fixture(scope="module")
def gmf_results(tmp_path_factory):
    from conftest import make_cfg

    out = tmp_path_factory.mktemp("gmf")
    return run(make_cfg(out, ["fuser=gmf"])), out


def test_av_beats_single_modalities_and_chance(gmf_results):
    results, _ = gmf_results
    acc = {c: results["metrics"][c]["acc"] for c in ("AV", "A", "V")}
    chance = 1 / 10
    assert acc["AV"] > 0.55, acc
    assert acc["AV"] > 4 * chance
    assert acc["AV"] - acc["A"] > 0.08 and acc["AV"] - acc["V"] > 0.08, acc
    assert min(acc["A"], acc["V"]) > 2 * chance, acc


def test_results_json_schema(gmf_results):
    results, out = gmf_results
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk == json.loads(json.dumps(results))
    assert on_disk["fuser"] == "gmf" and on_disk["data"] == "avsynth" and on_disk["seed"] == 1
    assert set(on_disk["metrics"]) == {"AV", "A", "V"}
    for cond in on_disk["metrics"].values():
        assert 0.0 <= cond["acc"] <= 1.0
    cx = on_disk["complexity"]
    assert isinstance(cx["params"], int) and isinstance(cx["flops"], int) and cx["cpu_latency_s"] > 0
    # GMF on 64/64 features: per modality 64*256+256 + 3*(128*64+64) = 41,408
    assert cx["params"] == 2 * 41_408
    assert cx["flops"] == 2 * (cx["params"] - 2 * (256 + 3 * 64))  # 2 x MACs at batch 1, biases not counted
    assert {"torch", "python", "pytorch-lightning"} <= set(on_disk["versions"])
    assert on_disk["status"] == "ok" and on_disk["timings"]["epochs"] == 4
    assert (out / "checkpoints" / "last.ckpt").exists()


def test_same_seed_same_metrics_other_seed_differs(cfg_factory):
    first = run(cfg_factory("fuser=concat", "trainer.max_epochs=2", name="a"))
    second = run(cfg_factory("fuser=concat", "trainer.max_epochs=2", name="b"))
    third = run(cfg_factory("fuser=concat", "trainer.max_epochs=2", "seed=2", name="c"))
    assert first["metrics"] == second["metrics"]
    assert first["metrics"] != third["metrics"]


def test_invalid_condition_fails_before_training(cfg_factory):
    with pytest.raises(UserError, match="invalid eval condition 'X'"):
        run(cfg_factory("eval.conditions=[AV,X]"))


def test_dims_that_do_not_match_the_modalities(cfg_factory):
    with pytest.raises(UserError, match="2 modalities .* but 3 dims"):
        run(cfg_factory("data.dims=[64,64,64]"))


def test_three_modalities_run_end_to_end(cfg_factory):
    results = run(cfg_factory("data.modalities=[audio,video,text]", "data.dims=[32,48,16]",
                              "eval.conditions=[AVT,A,VT]", "trainer.max_epochs=1"))
    assert set(results["metrics"]) == {"AVT", "A", "VT"}


def test_bf16_mixed_precision_on_cpu(cfg_factory):
    results = run(cfg_factory("fuser=gmf", "trainer.precision=bf16-mixed", "trainer.max_epochs=2"))
    acc = {c: results["metrics"][c]["acc"] for c in ("AV", "A", "V")}
    assert acc["AV"] > 0.5 and acc["AV"] > max(acc["A"], acc["V"]), acc

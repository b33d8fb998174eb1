"""End to end on the embedded data: the job learns, is reproducible, and writes the documented results."""
import json
import os
import stat
from pathlib import Path

import pytest
from omegaconf import open_dict

from gmf_repro.errors import RunFolderError, UserError
from gmf_repro.results import claim_run_folder, write_json_atomic
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
    # at paper size (conf/fuser/gmf.yaml) the paper-size figures the report compares are the run's own
    assert cx["paper_size"] == {"params": cx["params"], "flops": cx["flops"]}
    assert {"torch", "python", "pytorch-lightning"} <= set(on_disk["versions"])
    assert on_disk["status"] == "ok" and on_disk["timings"]["epochs"] == 4
    assert (out / "checkpoints" / "last.ckpt").exists()


def test_a_demo_size_run_records_its_paper_size_figures(cfg_factory):
    """The report reads the paper-size Params/FLOPs from results.json (it builds no model): a demo-size run records
    those of conf/fuser/<name>.yaml at its own dims; a fuser the group lacks records none."""
    from gmf_repro.complexity import measure, paper_size
    from gmf_repro.config import compose
    from gmf_repro.utils import build

    res = run(cfg_factory("fuser=demo/mbt", "trainer.max_epochs=1", "data.n_train=64", "data.n_test=32"))
    paper = measure(build(compose(["fuser=mbt"]).fuser)(dims={"audio": 64, "video": 64}), latency=False)
    assert res["complexity"]["paper_size"] == paper and paper["params"] > 10 * res["complexity"]["params"]
    assert paper_size("no_such_fuser", {"audio": 64, "video": 64}) is None


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


@pytest.mark.parametrize(
    "override, message",
    [
        ("trainer.max_epochs=abc", "trainer.max_epochs='abc' must be an integer >= 1"),
        ("trainer.max_epochs=0", "trainer.max_epochs=0 must be an integer >= 1"),
        ("data.batch_size=2.5", "data.batch_size=2.5 must be an integer >= 1"),
        ("data.dims=[64,x]", "data.dims=[64, 'x'] must be a list of integers >= 1"),
        ("fuser.n=0", "fuser.n=0 must be an integer >= 1"),
        ("task.optimizer.lr=-1", "task.optimizer.lr=-1 must be a number > 0"),
        ("resume=yes", "resume='yes' must be true or false"),
    ],
)
def test_bad_settings_fail_before_the_datamodule_is_built(cfg_factory, override, message):
    cfg = cfg_factory("fuser=gmf", override)
    with open_dict(cfg):
        cfg.data._target_ = "no.such.DataModule"  # building it would fail with another error
    with pytest.raises(UserError) as err:
        run(cfg)
    assert str(err.value).startswith(message), err.value
    assert not (Path(cfg.paths.output_dir) / "wandb").exists()


def test_a_finished_run_folder_is_refused(cfg_factory):
    settings = ("fuser=concat", "trainer.max_epochs=1", "data.n_train=200", "data.n_test=100")
    first = run(cfg_factory(*settings, name="same"))
    before = (Path(first["output_dir"]) / "results.json").read_bytes()
    with pytest.raises(RunFolderError, match="already holds a run's results.json; .* or set resume=true"):
        run(cfg_factory(*settings, "seed=2", name="same"))
    assert (Path(first["output_dir"]) / "results.json").read_bytes() == before


def test_a_run_folder_in_use_is_refused(cfg_factory):
    cfg = cfg_factory("fuser=concat", name="busy")
    with claim_run_folder(Path(cfg.paths.output_dir)):  # another job holds it
        with pytest.raises(RunFolderError, match=f"is in use by another run \\(pid {os.getpid()}\\)"):
            run(cfg)
    assert not (Path(cfg.paths.output_dir) / "results.json").exists()


def test_resume_without_a_checkpoint_says_so(cfg_factory):
    with pytest.raises(RunFolderError, match="resume=true but there is no checkpoint to resume from"):
        run(cfg_factory("resume=true", name="fresh"))


def test_checkpoint_none_writes_no_checkpoint_and_cannot_be_resumed(cfg_factory):
    settings = ("fuser=concat", "trainer.max_epochs=1", "data.n_train=200", "data.n_test=100", "checkpoint=none")
    res = run(cfg_factory(*settings, name="off"))
    assert res["status"] == "ok" and not list(Path(res["output_dir"]).rglob("*.ckpt"))  # nor one of Lightning's own
    with pytest.raises(RunFolderError) as err:
        run(cfg_factory(*settings, "resume=true", name="off"))
    assert str(err.value) == ("resume=true but this run writes no last.ckpt to continue from (checkpoint=none, or "
                              "a null checkpoint.dirpath); set checkpoint=default, or drop resume=true to start "
                              "from scratch")


def test_results_json_is_readable_by_others_and_leaves_no_temp_file(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_json_atomic(tmp_path / "results.json", {"status": "ok"})
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
        with pytest.raises(TypeError):
            write_json_atomic(path, {"status": object()})  # fails half-way through the dump
    finally:
        os.umask(old)
    assert json.loads(path.read_text()) == {"status": "ok"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def test_csv_logger_hparams_hold_the_flattened_config(cfg_factory):
    import yaml

    settings = ("logger=csv", "fuser=gmf", "trainer.max_epochs=1", "data.n_train=200", "data.n_test=100")
    results = run(cfg_factory(*settings, "task.optimizer.lr=0.02"))
    (hparams,) = Path(results["output_dir"]).glob("*/version_*/hparams.yaml")
    logged = yaml.safe_load(hparams.read_text())
    assert logged["fuser/n"] == 4 and logged["fuser/beta"] == 0.5 and logged["task/optimizer/lr"] == 0.02
    assert logged["data/dims"] == [64, 64] and logged["trainer/max_epochs"] == 1
    assert logged["config_digest"] == results["config_digest"] and logged["overrides"] == []
    # a job that fails while building still leaves its config behind
    cfg = cfg_factory(*settings, "fuser.beta=1.5", name="failed")
    with pytest.raises(ValueError, match="beta=1.5"):
        run(cfg)
    (hparams,) = Path(cfg.paths.output_dir).glob("*/version_*/hparams.yaml")
    assert yaml.safe_load(hparams.read_text())["fuser/beta"] == 1.5


def test_logger_labels_come_from_conf_logger_and_stay_out_of_the_digests(cfg_factory):
    from omegaconf import OmegaConf

    from gmf_repro.loggers import build_logger
    from gmf_repro.results import config_digest, setting_digest

    cfg = cfg_factory("logger=wandb", "fuser=mbt", "group=g", "tags=[t1]", "seed=3")
    logger = OmegaConf.to_container(cfg.logger, resolve=True)
    labels = {k: v for k, v in logger.items() if k in ("name", "group", "tags")}
    assert labels == {"name": "mbt | avsynth | seed 3", "group": "g", "tags": ["t1", "mbt"]}
    csv = build_logger(cfg_factory("logger=csv", "fuser=concat"))
    assert csv.name == "concat-avsynth-s1" and Path(csv.log_dir).parts[-2:] == ("concat-avsynth-s1", "version_0")
    # the labels are interpolations of other keys: removing them leaves both digests as they were
    bare = cfg.copy()
    with open_dict(bare):
        for key in ("name", "group", "tags"):
            bare.logger.pop(key)
    assert (config_digest(cfg), setting_digest(cfg)) == (config_digest(bare), setting_digest(bare))


def test_a_batch_larger_than_the_training_set_is_named_and_the_batch_used_is_recorded(cfg_factory, capfd):
    import yaml

    settings = ("logger=csv", "fuser=concat", "trainer.max_epochs=1", "data.n_train=200", "data.n_test=100")
    for batch, used, warned in ((100000, 200, True), (64, 64, False)):  # and a batch that fits: no word, as set
        results = run(cfg_factory(*settings, f"data.batch_size={batch}", name=f"b{batch}"))
        warnings = [line for line in capfd.readouterr().err.splitlines() if "training set" in line]
        assert warnings == ([f"warning: data.batch_size={batch} is larger than the training set (200 samples): every "
                             f"epoch is one step on all 200, and the run records batch size 200; set data.batch_size "
                             f"to at most 200"] if warned else [])
        assert results["batch_size"] == used
        (hparams,) = Path(results["output_dir"]).glob("*/version_*/hparams.yaml")
        logged = yaml.safe_load(hparams.read_text())
        assert logged["data/batch_size"] == used and logged.get("data/batch_size_configured", batch) == batch

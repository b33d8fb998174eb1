"""Missing-modality conditions act on the raw input, before any device-side transform (docs/paper.md §2).

What the fuser (frozen features) or the extractor (raw media) receives is captured with a forward
pre-hook while Lightning runs its real test loop: loader -> transfer -> datamodule.on_after_batch_transfer
(the condition on the raw batch, then standardise / spectrogram) -> test_step.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from conftest import make_cfg

from gmf_repro.build import build_model
from gmf_repro.data.avsynth import AVSynthDataModule
from gmf_repro.data.contract import check_datamodule
from gmf_repro.data.feature_store import write_store
from gmf_repro.errors import UserError
from gmf_repro.evaluation.conditions import apply_condition
from gmf_repro.fixtures import make_fakeavceleb
from gmf_repro.run import evaluate, run
from gmf_repro.utils import build

QUIET = ["logger=none", "progress=none", "print_config=false", "trainer=cpu", "threads=1", "eval.latency_repeats=2",
         "eval.mutual_information=false"]


def build_task(cfg):
    datamodule = build(cfg.data)
    return datamodule, build_model(cfg, datamodule)


def capture(module: torch.nn.Module, task, key: str | None = None) -> dict[str, list]:
    """Record the first positional input of ``module`` per task condition (None: no condition)."""
    seen: dict[str, list] = {}

    def hook(_mod, args):
        x = args[0]
        x = {k: v.detach().clone() for k, v in x.items()} if key is None else x.detach().clone()
        seen.setdefault(str(task.condition), []).append(x)

    module.register_forward_pre_hook(hook)
    return seen


def run_test_loop(datamodule, task, conditions, missing="zero") -> None:
    """Lightning's own test loop: once with no condition (the reference), then per condition."""
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_checkpointing=False,
                         enable_model_summary=False)
    trainer.test(task, datamodule=datamodule, verbose=False)  # no condition: the reference batches
    evaluate(trainer, task, datamodule, list(conditions), missing)


# -- frozen features: a feature store with raw extractor outputs far from zero ----------------------------
@pytest.fixture(scope="module")
def store(tmp_path_factory) -> dict:
    """A VGGSound-located store (only vggsound.csv; no clip is read) of raw features with mean ~2 per dim."""
    root = tmp_path_factory.mktemp("vgg")
    (root / "vggsound.csv").write_text("a0000000000,0,dog,train\nb0000000000,0,cat,test\n")
    cache = root / "cache"
    rng = np.random.default_rng(0)
    raw, splits = {}, {"audio": {}, "video": {}}
    for split, n in (("train", 48), ("test", 20)):
        keys = [f"{split}{i:03d}" for i in range(n)]
        labels = rng.integers(0, 2, n)
        for m, d in (("audio", 6), ("video", 5)):
            x = (rng.gamma(2.0, 1.0, (n, d)) + np.arange(d)).astype(np.float32)  # ReLU-like: positive, mean > 0
            raw[m, split] = x
            splits[m][split] = (x, labels, keys)
    # the store records the clip list it was made from, as FeatureExport writes it
    cfg = make_cfg(root / "cfg", [*QUIET, "experiment=vggsound_unimodal", f"data.root={root}",
                                  f"data.cache_dir={cache}", "data.build_cache=false"], tiny=False)
    list_hash = build(cfg.data).clip_list_hash
    for m in ("audio", "video"):
        feature_dir = write_store(cache / "features", m, splits[m], {"modality": m, "clip_list_hash": list_hash})
    assert feature_dir.is_dir()
    return {"root": root, "cache": cache, "raw": raw}


def frozen_cfg(store: dict, tmp: Path, *overrides: str):
    return make_cfg(tmp, [*QUIET, "experiment=vggsound_frozen", "fuser=concat", f"data.root={store['root']}",
                          f"data.cache_dir={store['cache']}", "data.batch_size=8", *overrides], tiny=False)


def test_the_papers_feature_experiments_feed_the_features_as_extracted():
    """Tables 2 (frozen), 4 and 7 feed the stored features raw; your own features (data=features) are standardised."""
    from gmf_repro.config import compose

    for exp in ("vggsound_frozen", "table2_frozen", "fakeavceleb", "fakeavceleb_frozen", "table4", "table7"):
        assert compose([f"experiment={exp}"]).data.standardize is False, exp
    assert compose(["data=features", "data.path=x.npz"]).data.standardize is True


@pytest.mark.parametrize("standardize", [False, True])
@pytest.mark.parametrize("missing", ["zero", "mean"])
def test_frozen_fuser_sees_the_zero_vector_or_its_standardised_image(store, tmp_path, missing, standardize):
    """standardize=false (the paper's feature experiments): an absent modality reaches the fuser as an exact zero
    vector (or the raw train mean under eval.missing=mean); standardize=true: (0 - mean) / std (or 0)."""
    datamodule, task = build_task(frozen_cfg(store, tmp_path, f"data.standardize={standardize}"))
    seen = capture(task.fuser, task)
    run_test_loop(datamodule, task, ["AV", "A", "V"], missing)
    stats = {}
    for m in ("audio", "video"):
        train = torch.from_numpy(store["raw"][m, "train"])
        mu, sd = train.mean(0), train.std(0)
        stats[m] = mu, sd
        assert (mu.abs() > 1).all()  # so (0 - mu) / sd is far from the mean-imputed 0
    fused = {c: {m: torch.cat([b[m] for b in batches]) for m in ("audio", "video")} for c, batches in seen.items()}
    n_test = len(store["raw"]["audio", "test"])
    for condition, absent, present in (("A", "video", "audio"), ("V", "audio", "video")):
        x = fused[condition][absent]
        mu, sd = stats[absent]
        if standardize:
            expected = (0 - mu) / sd if missing == "zero" else torch.zeros_like(mu)
        else:
            expected = torch.zeros_like(mu) if missing == "zero" else mu
        assert x.shape == (n_test, len(mu))
        assert torch.allclose(x, expected.expand_as(x), atol=1e-6, rtol=0), (condition, x[0], expected)
        if not standardize and missing == "zero":
            assert torch.equal(x, torch.zeros_like(x))  # exactly the paper's zero vector
        # the kept modality is the stored feature (standardised or not), as with both present
        mu_p, sd_p = stats[present]
        raw_p = torch.from_numpy(store["raw"][present, "test"])
        assert torch.allclose(fused[condition][present], (raw_p - mu_p) / sd_p if standardize else raw_p, atol=1e-6)
        assert torch.equal(fused[condition][present], fused["None"][present])
    for m in ("audio", "video"):  # AV: bitwise what the fuser sees with no condition at all
        assert torch.equal(fused["AV"][m], fused["None"][m])


# -- raw media: FakeAVCeleb's log-STFT of a zero waveform ------------------------------------------------
def test_fakeavceleb_audio_extractor_sees_the_log_stft_of_a_zero_waveform(tmp_path):
    root = make_fakeavceleb(tmp_path / "data", 3, seconds=0.6, size=(24, 32), damaged=False)
    cfg = make_cfg(tmp_path / "run", [*QUIET, "experiment=fakeavceleb_trainable", "fuser=concat", f"data.root={root}",
                                      "data.num_frames=2", "data.frame_size=[8,8]", "data.num_workers=0",
                                      "data.preprocess_workers=1", "data.show_progress=false"], tiny=False)
    datamodule, task = build_task(cfg)
    audio = capture(task.extractors["audio"], task, key="audio")
    video = capture(task.extractors["video"], task, key="video")
    run_test_loop(datamodule, task, ["AV", "A", "V"])
    spec = {c: torch.cat(b) for c, b in audio.items()}
    frames = {c: torch.cat(b) for c, b in video.items()}
    assert spec["V"].shape == (4, 1, 513, 60)  # one test clip per category
    # condition V: the transform of a zero waveform, log(0 + 1e-8), not log-magnitude 0
    assert torch.allclose(spec["V"], torch.full_like(spec["V"], math.log(1e-8)), atol=1e-4, rtol=0)
    assert spec["V"].max() < -18.4
    assert torch.equal(frames["A"], torch.zeros_like(frames["A"]))  # black frames (0 / 255)
    assert torch.equal(spec["A"], spec["None"]) and torch.equal(frames["V"], frames["None"])
    assert spec["None"].std() > 1  # the real clips' spectrogram is not constant
    assert torch.equal(spec["AV"], spec["None"]) and torch.equal(frames["AV"], frames["None"])


# -- the seam itself ---------------------------------------------------------------------------------------
def test_av_returns_the_batch_itself():
    batch = {"audio": torch.randn(3, 4), "video": torch.randn(3, 5), "label": torch.zeros(3, dtype=torch.long)}
    assert apply_condition(batch, "AV", ["audio", "video"]) is batch
    out = apply_condition(batch, "A", ["audio", "video"])
    assert out["audio"] is batch["audio"] and torch.equal(out["video"], torch.zeros(3, 5))
    wave = {"audio": torch.ones(2, 7, dtype=torch.int16)}
    assert apply_condition(wave, "V", ["audio", "video"])["audio"].dtype == torch.int16


def test_eval_missing_is_checked_before_training(cfg_factory):
    with pytest.raises(UserError, match="eval.missing=mean needs the train-split mean"):
        run(cfg_factory("eval.missing=mean"))  # avsynth has no stored statistics
    with pytest.raises(UserError, match="eval.missing=nan is not one of"):
        run(cfg_factory("eval.missing=nan"))


class _AfterTransfer(AVSynthDataModule):
    def on_after_batch_transfer(self, batch, dataloader_idx=0):
        return batch


def test_a_datamodule_that_would_bypass_the_condition_fails():
    """The condition is applied in the datamodule's on_after_batch_transfer, before its transform: a datamodule
    that overrides that hook (instead of ``transform``) would skip it, so the contract check refuses it."""
    with pytest.raises(UserError, match="overrides on_after_batch_transfer, .* move that code to its transform"):
        check_datamodule(_AfterTransfer(dims=[4, 4], n_train=64, n_test=32))
    assert check_datamodule(AVSynthDataModule(dims=[4, 4], n_train=64, n_test=32))

"""Training protocol of docs/paper.md §4 / paper Tables 5-6 and the media choices of issue items 9-12:
the plateau scheduler steps per iteration; FakeAVCeleb trains fusers on frozen unimodal features;
the FakeAVCeleb split's sort key and test make-up; VGGSound frames' orientation and time span."""
from __future__ import annotations

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from gmf_repro.build import build_model
from gmf_repro.utils import build

# -- item 10: ReduceLROnPlateau stepped per iteration ------------------------------------------------------------

@pytest.mark.parametrize("task, patience, extra", [("classification", 1000, {}),
                                                   ("classification_adam", 50, {"min_lr": 1e-8}),
                                                   ("retrieval", 1000, {})])
def test_default_plateau_steps_per_iteration_on_the_batch_loss(cfg_factory, task, patience, extra):
    cfg = cfg_factory(f"task={task}")
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.01)
    sched = build(cfg.task.scheduler)(opt)
    assert {k: sched[k] for k in ("interval", "frequency", "monitor")} == \
        {"interval": "step", "frequency": 1, "monitor": "train/loss_step"}
    plateau = sched["scheduler"]
    assert isinstance(plateau, torch.optim.lr_scheduler.ReduceLROnPlateau) and plateau.patience == patience
    assert plateau.min_lrs == [extra.get("min_lr", 0)]
    assert cfg.task.monitor == "train/loss"  # the checkpoint's epoch metric stays the epoch mean


@pytest.mark.parametrize("interval, monitor, drops", [("step", "train/loss_step", True),
                                                      ("epoch", "train/loss", False)])
def test_plateau_fires_within_one_epoch_only_when_stepped_per_iteration(cfg_factory, interval, monitor, drops):
    # an absolute threshold of 10 makes the loss a plateau for the scheduler: no batch after the first counts
    # as an improvement (what a constant loss gives)
    cfg = cfg_factory("fuser=concat", "data.n_train=320", "data.batch_size=32", "task.scheduler.patience=2",
                      "+task.scheduler.threshold=10", "+task.scheduler.threshold_mode=abs",
                      f"task.scheduler.interval={interval}", f"task.scheduler.monitor={monitor}")
    dm = build(cfg.data)
    task = build_model(cfg, dm)
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, accelerator="cpu")
    trainer.fit(task, datamodule=dm)  # 10 iterations
    assert trainer.lr_scheduler_configs[0].interval == interval
    lr = trainer.optimizers[0].param_groups[0]["lr"]
    # per step: best at step 1, 3 bad steps > patience 2 -> x0.1 at step 4, again at step 7 and 10
    assert (lr == pytest.approx(1e-5)) if drops else (lr == 0.01), (lr, trainer.global_step)


# -- item 9: FakeAVCeleb follows paper Tables 5 and 6 --------------------------------------------------------------

def _opt(cfg) -> dict:
    o, s = cfg.task.optimizer, cfg.task.scheduler
    return {"optimizer": o._target_.rsplit(".", 1)[-1], "lr": o.lr, "betas": list(o.get("betas", [])),
            "momentum": o.get("momentum"), "weight_decay": o.get("weight_decay"), "batch": cfg.data.batch_size,
            "epochs": cfg.trainer.max_epochs, "factor": s.factor, "patience": s.patience,
            "min_lr": s.get("min_lr", 0), "interval": s.interval}


TABLE6 = {"optimizer": "Adam", "lr": 0.005, "betas": [0.5, 0.9], "momentum": None, "weight_decay": None, "batch": 16,
          "epochs": 5, "factor": 0.5, "patience": 50, "min_lr": 1e-8, "interval": "step"}
TABLE5 = {"optimizer": "SGD", "lr": 0.01, "betas": [], "momentum": 0.9, "weight_decay": 1e-4, "batch": 64,
          "epochs": 20, "factor": 0.1, "patience": 1000, "min_lr": 0, "interval": "step"}


@pytest.mark.parametrize("overrides, data, settings, extractors", [
    (["experiment=fakeavceleb_unimodal", "modality=audio"], "fakeavceleb", TABLE6, {"audio": "ResNet18Audio"}),
    (["experiment=fakeavceleb_unimodal", "modality=video"], "fakeavceleb", TABLE6, {"video": "R2Plus1D18"}),
    (["experiment=fakeavceleb"], "fakeavceleb_features", TABLE5, {}),
    (["experiment=fakeavceleb_frozen"], "fakeavceleb_features", TABLE5, {}),
    (["experiment=table7"], "fakeavceleb_features", TABLE5, {}),
    (["experiment=table4"], "fakeavceleb_features", TABLE5, {}),
    (["experiment=fakeavceleb_trainable"], "fakeavceleb", TABLE6,
     {"audio": "ResNet18Audio", "video": "R2Plus1D18"}),
])
def test_fakeavceleb_experiments_follow_tables_5_and_6(cfg_factory, overrides, data, settings, extractors):
    cfg = cfg_factory(*overrides, tiny=False)
    assert cfg.labels.data == data and _opt(cfg) == settings
    assert {m: e._target_.rsplit(".", 1)[-1] for m, e in cfg.extractors.items()} == extractors
    if "video" in extractors:  # FakeAVCeleb trains from scratch (paper §5.1: no pre-training)
        assert cfg.extractors.video.weights is None
    if "features" in data:
        assert cfg.data.media_target.endswith("FakeAVCelebDataModule")
    if "unimodal" in overrides[0]:
        assert "features" in cfg.callbacks and list(cfg.data.modalities) == list(extractors)


# -- item 11: the FakeAVCeleb split's sort key and test-set make-up -------------------------------------------------

@pytest.fixture(scope="module")
def fake_root(tmp_path_factory):
    from gmf_repro.fixtures import make_fakeavceleb

    # per category: j=0, 2 in African/men (id00011, id00085), j=1, 3 in "Asian (East)"/women (id00048, id00122);
    # FakeVideo-FakeAudio also lists three unusable clips in African/men/id99999
    return make_fakeavceleb(tmp_path_factory.mktemp("fake"), 4, seconds=0.6, size=(24, 32))


def _fake_dm(root, **kw):
    from gmf_repro.data.fakeavceleb import FakeAVCelebDataModule

    return FakeAVCelebDataModule(str(root), num_frames=3, frame_size=[16, 16], fps=None, sample_rate=48000,
                                 audio_samples=15360, spectrogram=dict(kind="log_stft"), batch_size=4, num_workers=0,
                                 show_progress=False, preprocess_workers=1, **kw)


@pytest.mark.parametrize("sort_key, test_ids", [
    # whole race folders: the two "Asian (East)" identities are the test set of every category
    ("path", {"id00048", "id00122"}),
    # identity order mixes the race folders
    ("identity", {"id00085", "id00122"}),
    ("meta", {"id00085", "id00122"}),
])
def test_fakeavceleb_split_follows_the_sort_key(fake_root, sort_key, test_ids):
    dm = _fake_dm(fake_root, sort_key=sort_key)
    clips = dm.list_clips()
    for cat in range(3):  # 4 clips each: floor(0.7 * 4) = 2 to train
        test = {c.key.split("/")[-2] for c in clips if c.extra["category"] == cat and c.split == "test"}
        assert test == test_ids, (cat, test)
    d_train = [c.key for c in clips if c.extra["category"] == 3 and c.split == "train"]
    assert len(d_train) == 4  # floor(0.7 * 7)
    summary = dm.describe_split({s: [c.key for c in clips if c.split == s] for s in ("train", "test")})
    african = {"path": 1, "identity": 6, "meta": 6}[sort_key]  # listed clips (the cache drops the damaged three)
    assert summary["test"]["race"] == {"African": african, "Asian (East)": 9 - african}
    assert summary["test"]["category"] == {"RealVideo-RealAudio": 2, "RealVideo-FakeAudio": 2,
                                           "FakeVideo-RealAudio": 2, "FakeVideo-FakeAudio": 3}
    assert summary["sort_key"] == sort_key and summary["train"]["clips"] + summary["test"]["clips"] == 19


def test_unknown_sort_key_is_a_one_line_error(fake_root):
    with pytest.raises(ValueError, match="data.sort_key='name'; use one of"):
        _fake_dm(fake_root, sort_key="name")


def test_fakeavceleb_unimodal_baselines_then_frozen_fuser_store_the_split(fake_root, tmp_path, capsys):
    import json

    from conftest import make_cfg

    from gmf_repro.run import run

    small = ["logger=none", "progress=none", "print_config=false", "trainer=cpu", "+trainer.max_steps=1", "threads=1",
             "data.num_frames=3", "data.frame_size=[16,16]", "data.num_workers=0", "data.preprocess_workers=1",
             "data.show_progress=false", "eval.latency_repeats=2", "eval.mutual_information=false",
             f"data.root={fake_root}"]
    for m in ("audio", "video"):
        res = run(make_cfg(tmp_path / m, [*small, "experiment=fakeavceleb_unimodal", f"modality={m}"], tiny=False))
        assert res["experiment"] == f"fakeavceleb_unimodal_{m}" and set(res["metrics"]) == {m[0].upper()}
    printed = capsys.readouterr().out
    assert ("fakeavceleb split (sort key 'path', first 70% of each category to train): test 8 clips; by category: "
            "RealVideo-RealAudio 2, RealVideo-FakeAudio 2, FakeVideo-RealAudio 2, FakeVideo-FakeAudio 2; "
            "by race folder: African 0, Asian (East) 8") in printed
    frozen = run(make_cfg(tmp_path / "f", [*small, "experiment=fakeavceleb", "fuser=gmf"], tiny=False))
    # scored against the clip labels it learned and, per stream, against each kind (docs/paper.md §2.7)
    assert frozen["data"] == "fakeavceleb_features" and set(frozen["metrics"]["AV"]) == {
        "acc", "auroc", "ce", *(f"{m}_{k}_label" for m in ("acc", "auroc") for k in ("clip", "audio", "video"))}
    assert frozen["metrics"]["AV"]["acc"] == frozen["metrics"]["AV"]["acc_clip_label"]
    assert frozen["complexity"]["params"] == 5_250_048  # GMF on the two stored 512-d features (Table 5: [512,512])
    stored = json.loads((tmp_path / "f" / "results.json").read_text())["data_summary"]
    assert stored["sort_key"] == "path" and stored["test"]["clips"] == 8 and stored["train"]["clips"] == 8
    assert stored["test"]["race"] == {"African": 0, "Asian (East)": 8}
    assert stored["train"]["race"] == {"African": 8, "Asian (East)": 0}


def test_fakeavceleb_audio_is_the_first_8_frames_at_25_fps_and_gives_513_by_60(cfg_factory, tmp_path):
    from gmf_repro.data.audio import build_spectrogram, output_shape
    from gmf_repro.data.media import MediaSpec, decode_clip
    from gmf_repro.fixtures import write_clip

    data = cfg_factory("data=fakeavceleb", tiny=False).data
    assert data.audio_samples == data.sample_rate * 8 / 25 == 60 * data.spectrogram.hop_length == 15360
    assert output_shape(build_spectrogram(**data.spectrogram), data.audio_samples) == (1, 513, 60)
    path = tmp_path / "clip.mp4"  # a 25 fps clip with 16 kHz mono audio, as resampled to 48 kHz
    write_clip(path, seconds=0.8, tone_hz=440.0, colour=(40, 40, 200), fps=25, size=(24, 32), sample_rate=16000,
               stereo=False)
    spec = MediaSpec(num_frames=8, frame_size=(24, 32), fps=None, sample_rate=data.sample_rate,
                     audio_samples=data.audio_samples)
    video, audio = decode_clip(path, spec)
    assert video.shape == (8, 24, 32, 3) and audio.shape == (15360,)
    assert np.abs(audio[-1000:]).max() > 1000  # the segment ends inside the clip's sound (0.32 s of 0.8 s)


# -- item 12: VGGSound frames: orientation and time span ------------------------------------------------------------

def _vggsound_dm(tmp_path, cfg_factory, *overrides):
    from gmf_repro.data.vggsound import VGGSoundDataModule

    root = tmp_path / "vgg"
    root.mkdir(exist_ok=True)
    (root / "vggsound.csv").write_text("clip0000000,0,dog barking,test\n")
    data = dict(cfg_factory("data=vggsound", *overrides, tiny=False).data)
    for k in ("_target_", "root"):
        data.pop(k)
    return VGGSoundDataModule(str(root), **data)


def _write_frames(path, frames: np.ndarray, fps: int) -> None:
    """An H.264 mp4 (no audio) of the given uint8 RGB frames."""
    from fractions import Fraction

    import av

    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.height, vs.width, vs.pix_fmt = frames.shape[1], frames.shape[2], "yuv420p"
        vs.options = {"preset": "ultrafast", "crf": "8"}
        for i, img in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            out.mux(vs.encode(frame))
        out.mux(vs.encode(None))


def _white_box(frame: np.ndarray) -> tuple[int, int]:
    mask = frame.min(axis=-1) > 180
    return int(mask.any(axis=1).sum()), int(mask.any(axis=0).sum())  # (rows, columns) it covers


def test_vggsound_frames_keep_a_landscape_clip_landscape(tmp_path, cfg_factory):
    from gmf_repro.data.media import decode_clip

    # the paper's 192 x 256 landscape frame: left half red, right half blue, a white 64 x 64 square on the left
    img = np.zeros((192, 256, 3), np.uint8)
    img[:, :128] = (220, 30, 30)
    img[:, 128:] = (30, 30, 220)
    img[64:128, 32:96] = 255
    path = tmp_path / "landscape.mp4"
    _write_frames(path, np.stack([img] * 15), fps=5)
    dm = _vggsound_dm(tmp_path, cfg_factory)
    assert dm.input_shapes["video"] == (15, 96, 128, 3) and "-96x128-" in dm.cache_tag
    video, _ = decode_clip(path, dm.spec, need_audio=False)
    assert video.shape == (15, 96, 128, 3)
    left, right = video[0, :, :16].reshape(-1, 3).mean(0), video[0, :, -16:].reshape(-1, 3).mean(0)
    assert left[0] > 180 > left[2] and right[2] > 180 > right[0]  # left stays left
    rows, cols = _white_box(video[0])
    assert abs(rows - 32) <= 2 and abs(cols - 32) <= 2  # the square stays square: halved, not squashed
    # the paper's literal tensor order [128, 96] squashes it into portrait (16:9 taller than wide)
    tall, _ = decode_clip(path, _vggsound_dm(tmp_path, cfg_factory, "data.frame_size=[128,96]").spec, need_audio=False)
    rows, cols = _white_box(tall[0])
    assert abs(rows - 43) <= 2 and abs(cols - 24) <= 2


@pytest.mark.parametrize("span, step", [(None, 2), (9, 6)])
def test_vggsound_frame_times_follow_the_span(tmp_path, cfg_factory, span, step):
    from gmf_repro.data.media import decode_clip

    # 9.2 s at 10 fps; frame i shows i in binary as 8 black/white stripes of 8 px
    n = 92
    bits = (np.arange(n)[:, None] >> np.arange(8)[None, :]) & 1
    frames = np.repeat(np.repeat(bits[:, None, :, None] * 255, 8, axis=2), 3, axis=3).astype(np.uint8)
    frames = np.repeat(frames, 16, axis=1)  # [n, 16, 64, 3]
    path = tmp_path / "counter.mp4"
    _write_frames(path, frames, fps=10)
    over = [] if span is None else [f"data.frame_span_s={span}"]
    dm = _vggsound_dm(tmp_path, cfg_factory, "data.frame_size=[16,64]", *over)
    assert ("-span9-" in dm.cache_tag) == (span is not None)
    video, _ = decode_clip(path, dm.spec, need_audio=False)
    shown = [int(sum((f[:, 8 * b:8 * b + 8].mean() > 128) << b for b in range(8))) for f in video]
    # 5 fps from the start: t = 0, 0.2, ..., 2.8 s; spread over 9 s: t = 0, 0.6, ..., 8.4 s
    assert shown == [step * k for k in range(15)]


def test_frame_span_without_a_frame_rate_is_an_error():
    from gmf_repro.data.media import MediaSpec

    with pytest.raises(ValueError, match="data.frame_span_s=9 needs data.fps"):
        MediaSpec(num_frames=8, frame_size=(16, 16), fps=None, sample_rate=16000, audio_samples=100, span_s=9)

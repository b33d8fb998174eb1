"""Real-media path: PyAV decoding, the decode-once cache and its manifest, the datamodules, the extractors."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gmf_repro.data.audio import LogSTFT, MelRows
from gmf_repro.data.cache import CacheReader
from gmf_repro.data.fakeavceleb import FakeAVCelebDataModule
from gmf_repro.data.media import CORRUPT, MISSING, NO_AUDIO, ClipError, MediaSpec, decode_clip
from gmf_repro.data.vggsound import VGGSoundDataModule
from gmf_repro.errors import UserError
from gmf_repro.fixtures import make_fakeavceleb, make_vggsound, write_clip

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
SMALL = dict(num_frames=4, frame_size=[16, 12], fps=5, sample_rate=16000, audio_samples=32000,
             spectrogram=dict(kind="mel_rows", rows=2, n_mels=16, frames=100), batch_size=4, num_workers=0,
             show_progress=False, preprocess_workers=1)


@pytest.fixture(scope="module")
def vgg_root(tmp_path_factory) -> Path:
    return make_vggsound(tmp_path_factory.mktemp("vgg"), 12, seconds=1.2, size=(24, 32))


@pytest.fixture(scope="module")
def fake_root(tmp_path_factory) -> Path:
    return make_fakeavceleb(tmp_path_factory.mktemp("fake"), 3, seconds=0.8, size=(24, 32))


def test_decode_resamples_to_mono_16k_and_exact_lengths(tmp_path):
    path = tmp_path / "stereo.mp4"
    write_clip(path, seconds=1.0, tone_hz=440.0, colour=(200, 40, 40), fps=10, size=(24, 32), sample_rate=44100,
               stereo=True)
    spec = MediaSpec(num_frames=7, frame_size=(16, 12), fps=5, sample_rate=16000, audio_samples=24000)
    video, audio = decode_clip(path, spec)
    assert video.shape == (7, 16, 12, 3) and video.dtype == np.uint8
    assert audio.shape == (24000,) and audio.dtype == np.int16
    # 1 s of audio then zeros; mono = (L + R) / 2 with R = L / 2 -> amplitude 0.3 * 0.75 = 0.225
    assert np.abs(audio[18000:]).max() == 0  # (the AAC encoder pads its last frame a little)
    peak = np.abs(audio[2000:14000].astype(np.float32)).max() / 32768
    assert 0.18 < peak < 0.32
    # 1 s at 5 fps = 5 real frames, then the last one repeated; red stays red after resizing
    assert (video[5:] == video[4]).all()
    assert video[..., 0].mean() > 150 and video[..., 1].mean() < 90


def test_native_rate_takes_the_first_frames(tmp_path):
    path = tmp_path / "clip.mp4"
    write_clip(path, seconds=0.6, tone_hz=220.0, colour=(40, 40, 200), fps=25, size=(24, 32))
    spec = MediaSpec(num_frames=8, frame_size=(24, 24), fps=None, sample_rate=16000, audio_samples=15104)
    video, audio = decode_clip(path, spec)
    assert video.shape == (8, 24, 24, 3) and audio.shape == (15104,)
    assert not (video[1:] == video[0]).all()  # consecutive distinct frames, not padding


def test_unusable_clips_raise_with_a_reason(vgg_root):
    spec = MediaSpec(num_frames=4, frame_size=(16, 12), fps=5, sample_rate=16000, audio_samples=16000)
    rows = [line.split(",") for line in (vgg_root / "vggsound.csv").read_text().splitlines()]
    reasons = []
    for ytid, start, *_ in rows[-3:]:
        with pytest.raises(ClipError) as err:
            decode_clip(vgg_root / "video" / f"{ytid}_{int(start):06d}.mp4", spec)
        reasons.append(err.value.reason)
    assert reasons == [MISSING, CORRUPT, NO_AUDIO]


def test_preprocess_shards_manifest_and_resume(vgg_root, tmp_path, capsys):
    sys.path.insert(0, str(SCRIPTS))
    import preprocess

    cache = tmp_path / "cache"
    args = [f"data.root={vgg_root}", f"data.cache_dir={cache}", "data.num_frames=4", "data.frame_size=[16,12]",
            "data.audio_samples=32000", "data.spectrogram.rows=2",
            "--workers", "1", "--no-progress", "--num-shards", "2"]
    preprocess.main([*args, "--shard", "1"])
    assert "manifest is written when all shards are done" in capsys.readouterr().out
    assert not (cache / "manifest.json").exists()
    done = cache / "shard-00001-of-00002" / "DONE"
    stamp = done.stat().st_mtime_ns
    preprocess.main(args)  # resumes: decodes shard 0 only
    out = capsys.readouterr().out
    assert "kept 9 of 12 clips (1 missing, 1 corrupt, 1 without audio, 0 without video)" in out
    assert done.stat().st_mtime_ns == stamp
    manifest = json.loads((cache / "manifest.json").read_text())
    assert manifest["counts"] == {"kept": 9, "missing": 1, "corrupt": 1, "no_audio": 1, "no_video": 0}
    lines = (cache / "manifest.csv").read_text().splitlines()
    assert len(lines) == 13 and sum(",missing," in row for row in lines) == 1
    with pytest.raises(UserError, match="other settings"):
        preprocess.main([*args[:-2], "--num-shards", "3"])


def test_vggsound_datamodule_shapes_and_dtypes(vgg_root):
    dm = VGGSoundDataModule(str(vgg_root), **SMALL)
    assert dm.modalities == ["audio", "video"] and dm.num_classes == 4
    assert dm.input_shapes == {"audio": (2, 16, 100), "video": (4, 16, 12, 3)}
    dm.prepare_data()
    dm.setup("fit")
    assert (len(dm.train_set), len(dm.test_set)) == (5, 4)  # the 3 damaged clips are train clips
    raw = next(iter(dm.train_dataloader()))
    assert raw["video"].dtype == torch.uint8 and raw["audio"].dtype == torch.int16
    assert raw["audio"].shape == (4, 32000) and raw["label"].dtype == torch.int64 and raw["index"].dtype == torch.int64
    batch = dm.on_after_batch_transfer(raw, 0)
    assert batch["video"].shape == (4, 4, 16, 12, 3) and batch["video"].dtype == torch.float32
    assert 0 <= batch["video"].min() and batch["video"].max() <= 1
    assert batch["audio"].shape == (4, 2, 16, 100) and batch["audio"].dtype == torch.float32
    test = next(iter(dm.test_dataloader()))  # raw like training's, so a condition acts before the transform
    assert test["audio"].dtype == torch.int16 and test["video"].dtype == torch.uint8
    assert dm.on_after_batch_transfer(test, 0)["audio"].shape == (4, 2, 16, 100)
    only_audio = VGGSoundDataModule(str(vgg_root), modalities=["audio"], **SMALL)
    only_audio.setup()
    assert set(next(iter(only_audio.train_dataloader()))) == {"audio", "label", "index"}


def test_filename_template_end_style(tmp_path):
    root = make_vggsound(tmp_path, 4, seconds=0.6, size=(24, 32), template="{ytid}_{start}_{end}.mp4", damaged=False)
    dm = VGGSoundDataModule(str(root), filename_template="{ytid}_{start}_{end}.mp4", **SMALL)
    assert all(Path(c.path).exists() for c in dm.list_clips())
    with pytest.raises(ValueError, match="filename_template"):
        VGGSoundDataModule(str(root), filename_template="{video_id}.mp4", **SMALL).list_clips()


def test_fakeavceleb_split_labels_and_shapes(fake_root):
    dm = FakeAVCelebDataModule(str(fake_root), num_frames=8, frame_size=[16, 16], fps=None, sample_rate=16000,
                               audio_samples=15104, spectrogram=dict(kind="log_stft"), batch_size=4, num_workers=0,
                               show_progress=False, preprocess_workers=1)
    assert dm.num_classes == 2 and dm.input_shapes == {"audio": (1, 513, 60), "video": (8, 16, 16, 3)}
    clips = dm.list_clips()
    assert sum(Path(c.path).exists() for c in clips) == 14  # "FakeAVCeleb/..." folders resolved; 1 missing
    per_cat = {}
    for c in clips:
        per_cat.setdefault(c.extra["category"], []).append(c.split)
    assert {k: v.count("train") for k, v in per_cat.items()} == {0: 2, 1: 2, 2: 2, 3: 4}  # floor(70%) of 3, 3, 3, 6
    assert {c.label for c in clips if c.extra["category"] == 0} == {0}
    dm.setup()
    assert dm.manifest["counts"] == {"kept": 12, "missing": 1, "corrupt": 1, "no_audio": 1, "no_video": 0}
    batch = dm.on_after_batch_transfer(next(iter(dm.test_dataloader())), 0)
    assert batch["audio"].shape[1:] == (1, 513, 60) and batch["video"].shape[1:] == (8, 16, 16, 3)
    assert CacheReader(dm.cache_dir).extra[0]["category"] in (0, 1, 2, 3)


def test_spectrogram_shapes_match_the_paper():
    assert MelRows()(torch.zeros(2, 144000)).shape == (2, 9, 192, 100)
    assert LogSTFT()(torch.zeros(2, 15104)).shape == (2, 1, 513, 60)


def test_extractors_are_512d():
    from gmf_repro.models.extractors import R2Plus1D18, R2Plus1D18Audio, ResNet18Audio

    for cls, shape in [(R2Plus1D18, (2, 8, 8, 3)), (ResNet18Audio, (2, 16, 100)), (R2Plus1D18Audio, (2, 8, 8))]:
        m = cls(shape)
        assert m.out_dim == 512 and m(torch.zeros(2, *shape)).shape == (2, 512)
    assert ResNet18Audio((9, 192, 100)).net.conv1.in_channels == 1


def test_missing_kinetics_weights_say_what_to_do(tmp_path, monkeypatch):
    from gmf_repro.models.extractors import R2Plus1D18

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(FileNotFoundError, match="weights=null"):
        R2Plus1D18((4, 16, 12, 3), weights="KINETICS400_V1")

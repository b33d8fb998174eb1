"""The two audio extractors (docs/paper.md §3.1): ResNet-18 (the main text, the default) and Table 6's R(2+1)D-18
on nine one-second mel frames, one channel; pretrained RGB stems summed into that channel."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from gmf_repro.config import compose
from gmf_repro.fixtures import make_vggsound
from gmf_repro.models import extractors
from gmf_repro.models.extractors import R2Plus1D18Audio, ResNet18Audio, rgb_stem
from gmf_repro.run import run

VGG_MEL = (9, 192, 100)  # Table 6's audio input [9, 192, 100, 1]


def test_r2plus1d_audio_takes_nine_mel_frames_as_a_one_channel_clip():
    torch.manual_seed(0)
    net = R2Plus1D18Audio(VGG_MEL).eval()
    assert net.out_dim == 512 and net.net.stem[0].in_channels == 1
    with torch.no_grad():
        assert net(torch.rand(2, *VGG_MEL)).shape == (2, 512)
        assert R2Plus1D18Audio((1, 513, 60)).eval()(torch.rand(2, 1, 513, 60)).shape == (2, 512)  # FakeAVCeleb
    # torchvision's r2plus1d_18 (31,505,325) without fc (512 x 400 + 400) and two of the stem's three colours
    assert sum(p.numel() for p in net.parameters()) == 31_505_325 - 205_200 - 2 * 45 * 7 * 7 == 31_295_715
    assert sum(p.numel() for p in ResNet18Audio(VGG_MEL).parameters()) == 11_170_240
    with pytest.raises(ValueError, match=r"\[rows, mels, frames\]"):
        R2Plus1D18Audio((9, 192, 100, 1))


def test_rgb_stem_sums_colour_for_one_channel():
    w = torch.randn(4, 3, 1, 3, 3)
    assert torch.equal(rgb_stem(w, 1), w.sum(1, keepdim=True))
    assert rgb_stem(w, 3) is w
    six = rgb_stem(w, 6)  # repeated in turn, scaled so a constant input gives the same response
    assert six.shape == (4, 6, 1, 3, 3) and torch.allclose(six.sum(1), w.sum(1))


def _random_state(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    return {k: (torch.rand(v.shape, generator=g) + 0.5 if k.endswith("running_var") else
                torch.randn(v.shape, generator=g) * 0.05 if v.is_floating_point() else v.clone())
            for k, v in net.state_dict().items()}


@pytest.mark.parametrize("kind", ["r2plus1d", "resnet"])
def test_pretrained_weights_load_with_the_stem_summed_over_rgb(kind, monkeypatch):
    """A grey input through the one-channel network gives what the RGB network gives for that input in colour."""
    from torchvision.models import resnet18
    from torchvision.models.video import r2plus1d_18

    ref = (r2plus1d_18 if kind == "r2plus1d" else resnet18)()
    state = _random_state(ref)  # a small stand-in for the released file: random values in its exact key layout
    ref.load_state_dict(state)
    ref.fc = torch.nn.Identity()
    asked = []

    def from_cache(enum, name):
        asked.append((enum.__name__, name))
        return {k: v.clone() for k, v in state.items()}

    monkeypatch.setattr(extractors, "_torch_cache_weights", from_cache)
    shape = (2, 16, 20)
    if kind == "r2plus1d":
        net = R2Plus1D18Audio(shape, weights="KINETICS400_V1").eval()
        stem, key = net.net.stem[0].weight, "stem.0.weight"
    else:
        net = ResNet18Audio(shape, weights="IMAGENET1K_V1").eval()
        stem, key = net.net.conv1.weight, "conv1.weight"
    assert asked == [("R2Plus1D_18_Weights", "KINETICS400_V1") if kind == "r2plus1d" else
                     ("ResNet18_Weights", "IMAGENET1K_V1")]
    assert torch.equal(stem, state[key].sum(1, keepdim=True))
    x = torch.rand(3, *shape)
    with torch.no_grad():
        if kind == "r2plus1d":  # [B, rows, mels, frames] is a clip of `rows` steps, one channel
            expect = ref.eval()(x.unsqueeze(1).expand(-1, 3, -1, -1, -1))
        else:  # rows side by side in time, one channel
            img = x.permute(0, 2, 1, 3).reshape(3, 1, 16, 2 * 20)
            expect = ref.eval()(img.expand(-1, 3, -1, -1))
        torch.testing.assert_close(net(x), expect, rtol=1e-4, atol=1e-4)


def test_missing_kinetics_weights_name_the_file_and_the_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"r2plus1d_18-91a641e6\.pth.*weights=null"):
        R2Plus1D18Audio(VGG_MEL, weights="KINETICS400_V1")


def test_the_option_composes_through_unimodal_trainable_and_fakeavceleb_runs():
    option = "extractor@extractors.audio=r2plus1d_18_audio"
    target = "gmf_repro.models.extractors.R2Plus1D18Audio"
    for overrides, weights in ((["experiment=vggsound_unimodal", "modality=audio"], "KINETICS400_V1"),
                               (["experiment=table2_trainable"], "KINETICS400_V1"),
                               (["experiment=fakeavceleb_unimodal", "modality=audio"], None),  # from scratch
                               (["experiment=fakeavceleb_trainable"], None)):
        audio = compose([*overrides, option]).extractors.audio
        assert (audio._target_, audio.weights) == (target, weights), overrides
    default = compose(["experiment=vggsound_unimodal", "modality=audio"]).extractors.audio
    assert default._target_ == "gmf_repro.models.extractors.ResNet18Audio"  # ResNet-18 stays the default


def test_unimodal_run_trains_it_and_the_store_records_it(tmp_path: Path):
    from conftest import make_cfg

    root = make_vggsound(tmp_path / "vgg", 8, seconds=1.0, size=(24, 32), damaged=False)
    cfg = make_cfg(tmp_path / "a", [
        "preset=tiny", "logger=none", "progress=none", "print_config=false", "trainer=cpu", "threads=1",
        "trainer.max_epochs=1", "+trainer.max_steps=1", "data.num_frames=2", "data.frame_size=[16,16]",
        "data.spectrogram.n_mels=16", "data.batch_size=4", "data.num_workers=0", "data.preprocess_workers=1",
        "data.show_progress=false", "eval.latency_repeats=2", "eval.mutual_information=false",
        "experiment=vggsound_unimodal", "modality=audio", "extractor@extractors.audio=r2plus1d_18_audio",
        "extractors.audio.weights=null", f"data.root={root}"], tiny=False)
    res = run(cfg)
    assert set(res["metrics"]) == {"A"} and 0 <= res["metrics"]["A"]["acc"] <= 1
    store = next((root / "gmf_cache").iterdir()) / "features" / "audio"
    meta = json.loads((store / "meta.json").read_text())
    assert meta["extractor"] == "R2Plus1D18Audio" and meta["dim"] == 512
    train = np.load(store / "train.npy")
    assert train.shape[1] == 512 and np.isfinite(train).all() and train.std() > 0

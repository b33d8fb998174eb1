"""Method-specific extractors of Tables 4/7: shapes, the official checkpoint key layouts, one-line errors."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from gmf_repro.errors import UserError
from gmf_repro.models.convnext import ConvNeXtB
from gmf_repro.models.slstm import SLSTM
from gmf_repro.models.vit_mae import AudioMAEViT, MAEViTVideo

VIDEO, AUDIO = (4, 32, 32, 3), (1, 32, 48)
TINY_VIT = dict(patch_size=8, embed_dim=32, depth=2, num_heads=4)
TINY_CONVNEXT = dict(dims=(8, 16, 32, 64), depths=(1, 1, 2, 1), stochastic_depth_prob=0.0)


def build(name: str, shape: tuple[int, ...], **kw) -> nn.Module:
    return {
        "mae_vit_b": lambda: MAEViTVideo(shape, **TINY_VIT, **kw),
        "audio_mae_vit_b": lambda: AudioMAEViT(shape, **TINY_VIT, **kw),
        "convnext_b": lambda: ConvNeXtB(shape, **TINY_CONVNEXT, **kw),
        "slstm": lambda: SLSTM(shape, frame_grid=(2, 2), **kw),
    }[name]()


@pytest.mark.parametrize("name, shape, out_dim", [
    ("mae_vit_b", VIDEO, 32), ("audio_mae_vit_b", AUDIO, 32), ("convnext_b", VIDEO, 64), ("convnext_b", AUDIO, 64),
    ("slstm", VIDEO, 4 * 12), ("slstm", AUDIO, 4 * 32),  # MISA: hidden = per-step input (3 x 2 x 2 pooled, 32 bins)
])
def test_output_shape_and_out_dim(name, shape, out_dim):
    torch.manual_seed(0)
    model = build(name, shape).eval()
    y = model(torch.rand(3, *shape))
    assert model.out_dim == out_dim and y.shape == (3, out_dim) and torch.isfinite(y).all()
    y.sum().backward()  # trainable from scratch: every parameter gets a gradient
    assert all(p.grad is not None for p in model.parameters())


def vit_official_state(depth: int, dim: int, tokens: int, patch: int, chans: int, pretrain: bool) -> dict:
    """A timm-style ViT state dict with the official names (MAE / Audio-MAE release layout), random values."""
    s = {"cls_token": (1, 1, dim), "pos_embed": (1, tokens, dim),
         "patch_embed.proj.weight": (dim, chans, patch, patch), "patch_embed.proj.bias": (dim,)}
    for i in range(depth):
        b = f"blocks.{i}."
        s |= {b + "norm1.weight": (dim,), b + "norm1.bias": (dim,), b + "attn.qkv.weight": (3 * dim, dim),
              b + "attn.qkv.bias": (3 * dim,), b + "attn.proj.weight": (dim, dim), b + "attn.proj.bias": (dim,),
              b + "norm2.weight": (dim,), b + "norm2.bias": (dim,), b + "mlp.fc1.weight": (4 * dim, dim),
              b + "mlp.fc1.bias": (4 * dim,), b + "mlp.fc2.weight": (dim, 4 * dim), b + "mlp.fc2.bias": (dim,)}
    final = "norm" if pretrain else "fc_norm"
    s |= {f"{final}.weight": (dim,), f"{final}.bias": (dim,)}
    if pretrain:  # what a pre-training checkpoint adds: the decoder
        s |= {"mask_token": (1, 1, 16), "decoder_embed.weight": (16, dim), "decoder_pos_embed": (1, tokens, 16),
              "decoder_blocks.0.norm1.weight": (16,), "decoder_norm.weight": (16,), "decoder_pred.weight": (64, 16)}
    else:  # a fine-tuned checkpoint: classifier head
        s |= {"head.weight": (10, dim), "head.bias": (10,)}
    g = torch.Generator().manual_seed(1)
    return {k: torch.randn(v, generator=g) for k, v in s.items()}


@pytest.mark.parametrize("cls, shape, tokens, chans", [(MAEViTVideo, VIDEO, 17, 3), (AudioMAEViT, AUDIO, 25, 1)])
@pytest.mark.parametrize("pretrain", [True, False])
def test_vit_loads_the_official_layout(tmp_path, cls, shape, tokens, chans, pretrain):
    state = vit_official_state(2, 32, tokens, 8, chans, pretrain)
    path = tmp_path / "ckpt.pth"
    torch.save({"model": state, "epoch": 3}, path)
    model = cls(shape, weights=str(path), **TINY_VIT)
    report = model.load_report
    assert report.missing == [] and report.unexpected == [] and report.mismatched == []
    assert report.loaded == 4 + 12 * 2 + 2 and len(report.ignored) == (6 if pretrain else 2)
    final = "norm" if pretrain else "fc_norm"
    assert torch.equal(model.vit.norm.weight, state[f"{final}.weight"])
    assert torch.equal(model.vit.blocks[1].attn.qkv.weight, state["blocks.1.attn.qkv.weight"])
    assert torch.equal(model.vit.pos_embed, state["pos_embed"])


def test_convnext_loads_torchvisions_layout(tmp_path):
    from torchvision.models.convnext import CNBlockConfig, ConvNeXt

    stages = [CNBlockConfig(8, 16, 1), CNBlockConfig(16, 32, 1), CNBlockConfig(32, 64, 2), CNBlockConfig(64, None, 1)]
    ref = ConvNeXt(stages)
    torch.save(ref.state_dict(), tmp_path / "convnext.pth")
    video = ConvNeXtB(VIDEO, weights=str(tmp_path / "convnext.pth"), **TINY_CONVNEXT)
    r = video.load_report
    assert r.missing == r.unexpected == [] and r.ignored == ["classifier.2.weight", "classifier.2.bias"]
    assert torch.equal(video.net.features[0][0].weight, ref.features[0][0].weight)
    audio = ConvNeXtB(AUDIO, weights=str(tmp_path / "convnext.pth"), **TINY_CONVNEXT)
    # one-channel stem = the RGB kernels averaged over colour
    assert torch.allclose(audio.net.features[0][0].weight, ref.features[0][0].weight.mean(1, keepdim=True))
    ref.classifier[2] = nn.Identity()
    frames = torch.rand(2, *VIDEO)
    expect = ref.eval()((frames.flatten(0, 1).permute(0, 3, 1, 2) - video.mean) / video.std).view(2, 4, -1).mean(1)
    assert torch.allclose(video.eval()(frames), expect, atol=1e-5)


def test_slstm_layout_and_misa_order(tmp_path):
    h, step = 32, 32
    names = {}
    for rnn, inp in (("rnn1", step), ("rnn2", 2 * h)):
        for sfx in ("", "_reverse"):
            names |= {f"{rnn}.weight_ih_l0{sfx}": (4 * h, inp), f"{rnn}.weight_hh_l0{sfx}": (4 * h, h),
                      f"{rnn}.bias_ih_l0{sfx}": (4 * h,), f"{rnn}.bias_hh_l0{sfx}": (4 * h,)}
    names |= {"layer_norm.weight": (2 * h,), "layer_norm.bias": (2 * h,)}
    torch.save({k: torch.randn(v) for k, v in names.items()}, tmp_path / "slstm.pth")
    model = SLSTM(AUDIO, weights=str(tmp_path / "slstm.pth"))
    assert model.load_report.missing == model.load_report.unexpected == [] and model.load_report.loaded == 18
    x = torch.rand(2, *AUDIO)
    seq = x[:, 0].permute(2, 0, 1)  # 48 steps of 32 bins
    out1, (h1, _) = model.rnn1(seq)
    _, (h2, _) = model.rnn2(model.layer_norm(out1))
    # MISA: cat((final_h1, final_h2), dim=2).permute(1, 0, 2).view(B, -1) = [h1 fwd, h2 fwd, h1 bwd, h2 bwd]
    expect = torch.cat([h1[0], h2[0], h1[1], h2[1]], dim=1)
    assert torch.equal(model(x), expect)


def test_wrong_checkpoints_give_one_line_errors(tmp_path):
    state = vit_official_state(2, 32, 17, 8, 3, pretrain=True)
    state["pos_embed"] = torch.zeros(1, 197, 32)  # saved for another input size
    torch.save({"model": state}, tmp_path / "other_size.pth")
    with pytest.raises(UserError, match=r"not fit ViT: 1 shape mismatch.*pos_embed \(1, 197, 32\) vs \(1, 17, 32\)"):
        MAEViTVideo(VIDEO, weights=str(tmp_path / "other_size.pth"), **TINY_VIT)
    del state["blocks.1.mlp.fc2.bias"]
    state["pos_embed"], state["blocks.9.norm1.weight"] = torch.zeros(1, 17, 32), torch.zeros(32)
    torch.save({"model": state}, tmp_path / "other_depth.pth")
    with pytest.raises(UserError, match=r"1 missing \(e\.g\. blocks\.1\.mlp\.fc2\.bias\); 1 unexpected"):
        MAEViTVideo(VIDEO, weights=str(tmp_path / "other_depth.pth"), **TINY_VIT)
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    with pytest.raises(UserError, match=r"notes\.txt is not a PyTorch checkpoint"):
        AudioMAEViT(AUDIO, weights=str(tmp_path / "notes.txt"), **TINY_VIT)
    with pytest.raises(UserError, match=r"convnext_missing\.pth not found; get .*convnext_base-6075fbad\.pth"):
        ConvNeXtB(VIDEO, weights=str(tmp_path / "convnext_missing.pth"), **TINY_CONVNEXT)
    with pytest.raises(UserError, match=r"mae_pretrain_vit_base\.pth not found; get .*dl\.fbaipublicfiles\.com/mae"):
        MAEViTVideo(VIDEO, weights=str(tmp_path / "mae_pretrain_vit_base.pth"), **TINY_VIT)


def test_full_size_extractors_match_the_releases():
    # the official sizes: ViT-B/16 (85.8M with 197 tokens; Audio-MAE's 1024 x 128 fbank: 513 tokens), ConvNeXt-B
    # without its classifier's Linear, and MISA's sLSTM on FakeAVCeleb's [1, 513, 60] log-STFT
    mae, audio = MAEViTVideo((8, 224, 224, 3)), AudioMAEViT((1, 128, 1024))
    assert mae.vit.pos_embed.shape == (1, 197, 768) and audio.vit.pos_embed.shape == (1, 513, 768)
    assert sum(p.numel() for p in mae.parameters()) == 85_798_656
    assert sum(p.numel() for p in audio.parameters()) == 85_648_128
    assert sum(p.numel() for p in ConvNeXtB((8, 224, 224, 3)).parameters()) == 87_566_464
    slstm = SLSTM((1, 513, 60))
    assert slstm.out_dim == 2052 and slstm(torch.rand(1, 1, 513, 60)).shape == (1, 2052)


def test_fbank_is_audio_maes_input():
    from torchaudio.compliance.kaldi import fbank

    from gmf_repro.data.audio import build_spectrogram, output_shape

    spec = build_spectrogram("fbank", sample_rate=16000, num_mel_bins=128, frames=1024, n_fft=1024)
    assert output_shape(spec, 15360) == (1, 128, 1024)
    wave = torch.randn(2, 15360) * 0.1
    ref = fbank((wave[1] - wave[1].mean())[None], htk_compat=True, sample_frequency=16000, use_energy=False,
                window_type="hanning", num_mel_bins=128, dither=0.0, frame_shift=10)
    out = spec(wave)
    assert ref.shape == (94, 128) and torch.equal(out[1, 0, :, :94], ref.T) and out[:, :, :, 94:].abs().max() == 0


def test_complexity_cli_measures_extractors_at_the_tables_shapes(capsys):
    import json

    from gmf_repro.complexity.cli import main

    assert main(["extractor=slstm", "format=json"]) == 0
    video, audio = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert (video["modality"], video["input_shape"], video["out_dim"]) == ("video", [8, 224, 224, 3], 768)
    assert (audio["input_shape"], audio["out_dim"], audio["params"]) == ([1, 513, 60], 2052, 10_545_228)
    # LSTM matmuls: 2 x 60 steps x 2 directions x 4h(in + h), h = 513, in = 513 then 1026 (FlopCounterMode misses them)
    assert audio["flops"] == 2 * 60 * 2 * 4 * 513 * ((513 + 513) + (1026 + 513))
    assert main(["extractor=nope"]) == 2 and "unknown extractor 'nope'" in capsys.readouterr().err


def test_a_frozen_encoder_gets_no_gradient_and_stays_in_eval_mode():
    model = MAEViTVideo(VIDEO, trainable=False, **TINY_VIT)
    model.train()
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    assert not model(torch.rand(2, *VIDEO)).requires_grad


def test_gmf_mae_row_from_its_own_unimodal_stores(tmp_path_factory, tmp_path):
    # modality=audio_mae / video_mae write features_mae (MAE encoders fixed, tiny widths, from scratch), and the
    # GMF-MAE row of Tables 4/7 trains GMF on that store, not on the default R(2+1)D-18 one
    from conftest import make_cfg

    from gmf_repro.fixtures import make_fakeavceleb
    from gmf_repro.report.tables import row_key
    from gmf_repro.run import run

    root = make_fakeavceleb(tmp_path_factory.mktemp("fake"), 4, seconds=0.6, size=(24, 32))
    small = ["logger=none", "progress=none", "print_config=false", "trainer=cpu", "+trainer.max_steps=1", "threads=1",
             "data.num_frames=2", "data.frame_size=[16,16]", "data.num_workers=0", "data.preprocess_workers=1",
             "data.show_progress=false", "eval.latency_repeats=1", "eval.mutual_information=false",
             f"data.root={root}"]
    vit = ["weights=null", "patch_size=8", "embed_dim=16", "depth=1", "num_heads=2"]
    for m in ("audio", "video"):
        fbank = ["data.spectrogram.num_mel_bins=16", "data.spectrogram.frames=32"] if m == "audio" else []
        res = run(make_cfg(tmp_path / m, [*small, "experiment=fakeavceleb_unimodal", f"modality={m}_mae", *fbank,
                                          *[f"extractors.{m}.{o}" for o in vit]], tiny=False))
        assert res["experiment"] == f"fakeavceleb_unimodal_{m}"
    store = next(root.rglob("features_mae"))
    assert sorted(p.name for p in store.iterdir()) == ["audio", "video"] and not (store.parent / "features").exists()
    frozen = run(make_cfg(tmp_path / "row", [*small, "experiment=fakeavceleb", "+table7_row=gmf_mae"], tiny=False))
    assert frozen["data"] == "fakeavceleb_features" and frozen["fuser"] == "gmf"
    assert row_key(frozen, "table7") == "gmf_mae"
    # GMF on the two 16-d MAE features: dissolve 16 -> 64, then three 32 -> 16 maps per modality
    assert frozen["complexity"]["params"] == 2 * (16 * 64 + 64) + 6 * (32 * 16 + 16)


def test_a_row_without_its_store_names_the_unimodal_runs_that_make_it(tmp_path):
    from conftest import make_cfg

    from gmf_repro.fixtures import make_fakeavceleb
    from gmf_repro.utils import build

    root = make_fakeavceleb(tmp_path / "fake", 2, seconds=0.4, size=(16, 16))
    cfg = make_cfg(tmp_path / "run", ["experiment=table7", "+table7_row=misa", f"data.root={root}"], tiny=False)
    assert cfg.feature_set == "slstm" and cfg.labels.fuser == "misa"
    with pytest.raises(FileNotFoundError, match=r"features_slstm; make it with `python -m gmf_repro "
                                                r"experiment=fakeavceleb_unimodal modality=audio_slstm data\.root="):
        build(cfg.data)

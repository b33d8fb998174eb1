"""The paper's three experiment kinds on real (tiny) mp4s, through run(cfg) and the Hydra config tree:
unimodal baselines -> feature store -> frozen fuser; trainable extractors with linear probes; FakeAVCeleb."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gmf_repro.fixtures import make_fakeavceleb, make_vggsound
from gmf_repro.run import run
from gmf_repro.utils import build

# preset=tiny, made smaller still through config values only (no special code path)
SMALL = ["preset=tiny", "logger=none", "progress=none", "print_config=false", "trainer=cpu", "trainer.max_epochs=1",
         "data.num_frames=3", "data.frame_size=[16,16]", "data.spectrogram.n_mels=16", "data.batch_size=8",
         "data.num_workers=0", "data.preprocess_workers=1", "data.show_progress=false", "eval.latency_repeats=2",
         "eval.mutual_information=false"]


def cfg(out: Path, *overrides: str):
    from conftest import make_cfg

    return make_cfg(out, [*SMALL, *overrides], tiny=False)


@pytest.fixture(scope="module")
def vgg_root(tmp_path_factory) -> Path:
    return make_vggsound(tmp_path_factory.mktemp("vgg"), 16, seconds=1.0, size=(24, 32))


def test_unimodal_then_features_then_frozen(vgg_root, tmp_path):
    root = f"data.root={vgg_root}"
    audio = run(cfg(tmp_path / "a", "experiment=vggsound_unimodal", "modality=audio", root))
    video = run(cfg(tmp_path / "v", "experiment=vggsound_unimodal", "modality=video", "extractors.video.weights=null",
                    root))
    assert set(audio["metrics"]) == {"A"} and set(video["metrics"]) == {"V"}
    assert audio["experiment"] == "vggsound_unimodal_audio"
    store = next((vgg_root / "gmf_cache").iterdir()) / "features"
    for m in ("audio", "video"):
        train, test = np.load(store / m / "train.npy"), np.load(store / m / "test.npy")
        assert train.shape == (9, 512) and test.shape == (4, 512) and train.dtype == np.float32
        assert json.loads((store / m / "test_keys.json").read_text())[0].startswith("fx00-")
    frozen = run(cfg(tmp_path / "f", "experiment=vggsound_frozen", "fuser=gmf", root))
    assert frozen["data"] == "vggsound_features" and set(frozen["metrics"]) == {"AV", "A", "V"}
    assert frozen["complexity"]["params"] == 5_250_048  # GMF on the stored 512/512 features (Table 2)


def test_frozen_without_store_names_the_commands(tmp_path):
    root = make_vggsound(tmp_path / "data", 4, seconds=0.4, size=(24, 32), damaged=False)
    c = cfg(tmp_path / "f", "experiment=vggsound_frozen", f"data.root={root}")
    with pytest.raises(FileNotFoundError) as err:
        build(c.data)
    msg = str(err.value)
    assert "\n" not in msg and "modality=audio" in msg and "modality=video" in msg and str(root) in msg


def test_trainable_step_with_probes(vgg_root, tmp_path):
    res = run(cfg(tmp_path / "t", "experiment=vggsound_trainable", "fuser=gmf", "extractors.video.weights=null",
                  "+trainer.max_steps=1", "callbacks.probe.epochs=1", f"data.root={vgg_root}"))
    assert set(res["metrics"]) == {"AV", "A", "V", "A(uni)", "V(uni)"}
    assert all(0 <= v["acc"] <= 1 for v in res["metrics"].values())


def test_fakeavceleb_step_reports_acc_and_auc(tmp_path):
    root = make_fakeavceleb(tmp_path / "data", 3, seconds=0.6, size=(24, 32))
    res = run(cfg(tmp_path / "f", "experiment=fakeavceleb_trainable", "fuser=concat", "+trainer.max_steps=1",
                  "data.num_frames=4", "data.frame_size=[16,16]", f"data.root={root}"))
    per_stream = {f"{m}_{k}_label" for m in ("acc", "auroc") for k in ("clip", "audio", "video")}
    assert set(res["metrics"]["AV"]) == {"acc", "auroc", "ce", *per_stream} and set(res["metrics"]) == {"AV", "A", "V"}

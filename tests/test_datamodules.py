"""The datamodules held as tensors share TensorDataModule's loaders: each shuffle order comes from data.seed and
the epoch alone. synth_retrieval serves ActivityNet's pool settings on avsynth's samples."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from test_retrieval import write_pickles

from gmf_repro.data.activitynet import ActivityNetDataModule
from gmf_repro.data.avsynth import AVSynthDataModule
from gmf_repro.data.features import FeatureFilesDataModule
from gmf_repro.data.synth_retrieval import SynthRetrievalDataModule
from gmf_repro.data.tensors import TensorDataModule
from gmf_repro.errors import UserError


def make(name: str, root: Path, seed: int) -> TensorDataModule:
    small = dict(n_train=120, n_test=40, seed=seed, batch_size=16)
    if name == "avsynth":
        return AVSynthDataModule(dims=[4, 4], **small)
    if name == "synth_retrieval":
        return SynthRetrievalDataModule(dims=[4, 6], **small)
    if name == "features":
        path = root / "f.npz"
        if not path.exists():
            rng = np.random.default_rng(0)
            np.savez(path, audio=rng.normal(size=(160, 3)), label=rng.integers(0, 2, 160))
        return FeatureFilesDataModule(str(path), seed=seed, batch_size=16)
    anet = root / "anet"
    if not anet.exists():
        write_pickles(anet, n_train=120, n_test=40)
    return ActivityNetDataModule(str(anet), image_dim=8, video_dim=32, num_classes=3, proposals=4, seed=seed,
                                 batch_size=16)


@pytest.mark.parametrize("name", ["avsynth", "synth_retrieval", "features", "activitynet"])
def test_the_training_order_comes_from_the_seed_and_the_epoch(name: str, tmp_path: Path) -> None:
    def order(seed: int, epoch: int, global_seed: int) -> list[int]:
        torch.manual_seed(global_seed)
        dm = make(name, tmp_path, seed)
        assert isinstance(dm, TensorDataModule)
        dm.setup("fit")
        loader = dm.train_dataloader()
        loader.sampler.set_epoch(epoch)
        return torch.cat([b["index"] for b in loader]).tolist()

    first = order(1, 0, 0)
    assert first == order(1, 0, 123)  # the global random state plays no part
    assert sorted(first) == list(range(len(first))) and first != sorted(first)
    assert first != order(1, 1, 0) and first != order(2, 0, 0)


def test_synth_retrieval_bags_average_to_the_pooled_vectors() -> None:
    kw = dict(dims=[4, 6], n_train=30, n_test=10, seed=3)
    pooled, bags = SynthRetrievalDataModule(**kw), SynthRetrievalDataModule(pool="none", proposals=5, **kw)
    assert (pooled.input_shapes, bags.input_shapes) == ({"image": (4,), "video": (6,)},
                                                       {"image": (4,), "video": (5, 6)})
    for dm in (pooled, bags):
        dm.setup()
    for split in ("train_set", "test_set"):
        a, b = getattr(pooled, split).tensors, getattr(bags, split).tensors
        assert b["video"].shape == (len(a["video"]), 5, 6) and b["video"].std(1).mean() > 0.3
        torch.testing.assert_close(b["video"].mean(1), a["video"], atol=1e-5, rtol=0)
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["label"], b["label"])
    # the same samples as avsynth in retrieval mode
    plain = AVSynthDataModule(modalities=["image", "video"], **kw)
    plain.setup()
    assert torch.equal(plain.train_set.tensors["video"], pooled.train_set.tensors["video"])
    with pytest.raises(UserError, match="data.pool must be 'mean', 'max' or 'none'"):
        SynthRetrievalDataModule(pool="sum", **kw)

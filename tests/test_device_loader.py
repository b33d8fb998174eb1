"""The device-resident loader of frozen-feature runs: the host loader's batches, in its order, every epoch."""
import json

import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf, open_dict

from gmf_repro.data.generated import GeneratedClips, write_generated_features
from gmf_repro.data.tensors import DeviceTensorLoader, TensorDictDataset, batch_loader
from gmf_repro.models.extractors import R2Plus1D18, ResNet18Audio
from gmf_repro.run import run


def _data(n=203):
    g = torch.Generator().manual_seed(0)
    return TensorDictDataset({"audio": torch.randn(n, 5, generator=g), "label": torch.randint(3, (n,), generator=g)})


def _epoch(loader, epoch):
    loader.sampler.set_epoch(epoch)
    return [b["index"].tolist() for b in loader]


def test_same_batches_and_order_as_host_loader():
    ds = _data()
    host, dev = batch_loader(ds, 32, shuffle=True, seed=7), DeviceTensorLoader(ds, 32, shuffle=True, seed=7)
    assert len(dev) == len(host) == 7
    e0, e1 = _epoch(dev, 0), _epoch(dev, 1)
    assert e0 == _epoch(host, 0) and e1 == _epoch(host, 1) and e0 != e1
    batch = next(iter(dev))
    assert torch.equal(batch["audio"], ds.tensors["audio"][batch["index"]])
    assert torch.equal(batch["label"], ds.tensors["label"][batch["index"]])


def test_ranks_take_disjoint_equal_shares():
    ds = _data()
    shares = [_epoch(DeviceTensorLoader(ds, 32, shuffle=True, seed=7, rank=r, world_size=2), 0) for r in (0, 1)]
    assert len(shares[0]) == len(shares[1]) == 3  # 7 batches: 3 each, the last one left out
    flat = [sorted(sum(s, [])) for s in shares]
    assert not set(flat[0]) & set(flat[1])


class RecordOrder(pl.Callback):
    """Appends each training batch's sample indices, by epoch, to a JSON-lines file."""

    def __init__(self, path: str) -> None:
        self.path = path

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps([trainer.current_epoch, batch["index"].tolist()]) + "\n")


def _orders(path):
    out = {}
    for line in open(path):
        epoch, idx = json.loads(line)
        out.setdefault(epoch, []).extend(idx)
    return out


def test_frozen_run_on_device_loader_equals_host_loader(cfg_factory, tmp_path):
    """Through run(): the same order each epoch (Lightning sets the loader's epoch), bitwise the same metrics."""
    common = ["threads=1", "logger=none", "progress=none", "print_config=false", "trainer=cpu",
              "eval.latency_repeats=3", "eval.mutual_information=false", "experiment=vggsound_frozen", "fuser=gmf",
              f"data.root={tmp_path}", "+data.num_classes=4", "+data.n_train=600", "+data.n_test=200",
              "data.media_target=gmf_repro.data.generated.GeneratedClips", "trainer.max_epochs=2"]
    media = GeneratedClips(**OmegaConf.to_container(cfg_factory(*common, tiny=False).data, resolve=True))
    write_generated_features(media.feature_dir, ["audio", "video"], 32, 4, 600, 200, seed=1,
                             list_hash=media.clip_list_hash)
    results, orders = {}, {}
    for resident in ("true", "false"):
        cfg = cfg_factory(*common, f"data.device_resident={resident}", name=resident, tiny=False)
        log = tmp_path / f"order-{resident}.jsonl"
        with open_dict(cfg):
            cfg.callbacks = {"order": {"_target_": "test_device_loader.RecordOrder", "path": str(log)}}
        results[resident], orders[resident] = run(cfg), _orders(log)
    assert orders["true"] == orders["false"] and orders["true"][0] != orders["true"][1]
    assert sorted(orders["true"][0]) == list(range(600))
    assert results["true"]["metrics"] == results["false"]["metrics"]
    assert results["true"]["metrics"]["AV"]["acc"] > 0.5  # learnable: 4 classes, chance 0.25


def test_channels_last_is_the_same_model():
    for make, shape in ((lambda cl: R2Plus1D18((4, 16, 16, 3), weights=None, channels_last=cl), (2, 4, 16, 16, 3)),
                        (lambda cl: ResNet18Audio((2, 16, 20), channels_last=cl), (2, 2, 16, 20))):
        torch.manual_seed(0)
        plain = make(False).eval()
        torch.manual_seed(0)
        fast = make(True).eval()
        assert list(plain.state_dict()) == list(fast.state_dict())
        x = torch.randn(*shape)
        assert torch.allclose(plain(x), fast(x), atol=1e-4)

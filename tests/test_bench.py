"""`python -m gmf_repro.bench`: the real model of an experiment on generated data of the real shapes, every figure."""
import json

import pytest
import torch
from conftest import cli

from gmf_repro.bench import bench, peak_tflops
from gmf_repro.config import compose


def test_trainable_tiny_prints_every_figure(tmp_path):
    out = tmp_path / "bench.json"
    proc = cli("gmf_repro.bench", "experiment=vggsound_trainable", "fuser=gmf", "preset=tiny", "threads=1",
               "bench.steps=2", "bench.warmup=1", "bench.split_steps=1", "bench.clips=16", "bench.test_batches=1",
               "data.batch_size=4", "data.num_workers=0", "data.num_frames=2", f"bench.out={out}",
               f"bench.work_dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = proc.stdout
    for figure in ("clips/s", "data wait", "host-to-device", "compute", "peak memory: n/a (CPU)", "TFLOP/s",
                   "MFU n/a (CPU)", "GFLOP per training step", "lightning", "table 2 trainable"):
        assert figure in text, figure
    r = json.loads(out.read_text())
    assert r["source"].startswith("generated") and r["device"] == "cpu" and r["cpu_threads"] == 1
    assert r["plain"]["clips_per_step"] == 4 and r["flops_per_step"] > 1e9  # two CNNs, forward + backward
    assert r["achieved_tflops"] == pytest.approx(r["flops_per_step"] / r["lightning"]["step_s"] / 1e12)
    row = next(p for p in r["projections"] if p["table"] == "2 trainable")
    assert row["hours"] == pytest.approx(147000 * 20 * 10 / r["rate_for_projection"] / 3600)
    assert next(p for p in r["projections"] if p["table"] == "2 frozen")["hours"] is None
    assert not list(tmp_path.glob("gmf_bench_*"))  # the generated cache is removed
    # quieter than the runs: figures, not library chatter nor the step limit that ends every measurement
    for noise in ("💡 Tip", "GPU available: False", "LeafSpec", "max_steps="):
        assert noise not in proc.stdout + proc.stderr, noise


def test_frozen_features_lightning_matches_plain_loop(tmp_path):
    """Same steps from the same weights: the same loss and test accuracy. The bound on Lightning's speed only
    catches a gross regression (40 steps on a shared CPU are noisy); docs/performance.md has the measured ratio."""
    cfg = compose(config_name="bench", overrides=[
        "experiment=vggsound_frozen", "fuser=gmf", "threads=1", "bench.steps=40", "bench.warmup=5",
        "bench.clips=2560", f"bench.work_dir={tmp_path}", "bench.test_batches=5", "bench.feature_dim=512",
        "bench.num_classes.vggsound_features=10"])
    r = bench(cfg)
    assert r["source"].startswith("generated") and r["plain"]["clips_per_step"] == 64
    assert r["lightning"]["final_loss"] == r["plain"]["final_loss"]
    assert r["test_acc"]["lightning"] == r["test_acc"]["plain"] > 0.2  # 10 classes: chance 0.1
    assert r["lightning"]["ratio_to_plain"] >= 0.5


def test_peak_table_names_cards():
    assert peak_tflops("NVIDIA H100 80GB HBM3", "16-mixed") == 989.0
    assert peak_tflops("NVIDIA H100 PCIe", "bf16-mixed") == 756.0
    assert peak_tflops("NVIDIA A100-SXM4-80GB", "32-true") == 19.5
    assert peak_tflops("NVIDIA GeForce RTX 4090", "16-mixed") == 165.2
    assert peak_tflops("NVIDIA H200", "16-mixed") == 989.0
    assert peak_tflops("Some Future GPU", "16-mixed") is None


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@cuda
def test_cuda_frozen_gmf_vggsound_size_mixed_precision(tmp_path):
    """The frozen target on a GPU: VGGSound-size features on the device, Lightning >= 0.8x the plain loop."""
    cfg = compose(config_name="bench", overrides=[
        "experiment=vggsound_frozen", "fuser=gmf", "trainer.precision=16-mixed", "bench.steps=300",
        "bench.warmup=20", "bench.clips=147000", f"bench.work_dir={tmp_path}", "bench.test_batches=5"])
    r = bench(cfg)
    assert r["device"] == "cuda" and r["peak_memory_gib"] > 0.5  # the whole store is on the device
    assert r["plain"]["data_wait_s"] < 0.1 * r["plain"]["step_s"]
    assert r["lightning"]["ratio_to_plain"] >= 0.8
    row = next(p for p in r["projections"] if p["table"] == "2 frozen")
    print(f"20 epochs of GMF on {row['train_clips']} clips: {row['hours_per_run'] * 60:.1f} min")


@cuda
def test_cuda_trainable_16_mixed_reports_mfu(tmp_path):
    cfg = compose(config_name="bench", overrides=[
        "experiment=vggsound_trainable", "fuser=gmf", "trainer.precision=16-mixed", "bench.steps=10",
        "bench.warmup=3", "bench.clips=256", f"bench.work_dir={tmp_path}", "bench.test_batches=1",
        "data.num_workers=4"])
    r = bench(cfg)
    assert r["peak_memory_gib"] > 0 and r["achieved_tflops"] > 0
    if r["peak_tflops"]:
        assert 0 < r["mfu"] < 1
    assert abs(r["lightning"]["final_loss"] - r["plain"]["final_loss"]) < 0.05 * abs(r["plain"]["final_loss"])


@cuda
def test_cuda_device_loader_batches_live_on_the_gpu():
    from gmf_repro.data.tensors import DeviceTensorLoader, TensorDictDataset, batch_loader

    ds = TensorDictDataset({"audio": torch.randn(100, 4), "label": torch.randint(3, (100,))})
    dev = DeviceTensorLoader(ds, 16, shuffle=True, seed=3, device="cuda")
    batches = list(dev)
    assert all(b["audio"].is_cuda for b in batches)
    assert [b["index"].tolist() for b in batches] == [b["index"].tolist() for b in batch_loader(ds, 16, True, seed=3)]

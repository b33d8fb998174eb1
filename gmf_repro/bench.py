"""``python -m gmf_repro.bench [overrides]``: how fast an experiment trains here, and what every table then costs.

Same config tree as a run (``experiment=vggsound_trainable fuser=gmf``, ``trainer.precision=bf16-mixed``,
``extractors.video.channels_last=false``, ...), plus ``bench.*`` (conf/bench.yaml). It builds the
experiment's real model and trains it for ``bench.steps`` steps twice from the same initial weights:

- a plain PyTorch loop over the datamodule's own loader: clips/s over ``bench.steps`` steps, and, over
  ``bench.split_steps`` steps synchronised at every phase, the split of a step into data wait (the host
  waiting for the loader) / host-to-device copy / compute (the datamodule's device-side step, e.g. the
  spectrogram, then forward, backward, optimiser);
- the Lightning path a run takes (same Trainer config), timed end to end: clips/s, and its ratio to
  the plain loop (Lightning's per-step overhead).

Data: the real cache or feature store when ``data.root`` has one, else generated data of the real
shapes and dtypes (a cache of random uint8 frames / int16 waveforms, or a feature store with
avsynth's class structure), so a user can measure a card before downloading anything.

It prints clips/s, the step-time split, peak GPU memory, FLOPs of one training step
(FlopCounterMode, forward + backward, FLOPs = 2 x MACs), achieved TFLOP/s and MFU against the card's
dense peak (``PEAK_TFLOPS``; ``bench.peak_tflops`` for other cards), and the projected wall time of
the paper's tables that this experiment trains (clips x epochs x runs / measured clips/s).
"""
from __future__ import annotations

import copy
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import hydra
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf, open_dict
from torch import Tensor

from .build import build_model
from .config import CONF_DIR, check_settings
from .data.clip_base import AVClipDataModule
from .data.contract import model_inputs
from .data.feature_store import FeatureStoreDataModule
from .data.generated import write_generated_cache, write_generated_features
from .data.tensors import DeviceTensorLoader, EpochBatchSampler
from .errors import UserError, env_flag
from .run import resolve_precision
from .tasks.classification import ClassificationTask
from .threads import set_threads
from .utils import build, labels_of

# Dense (no sparsity) peak TFLOP/s from the vendors' datasheets: (name contains, fp16/bf16 tensor cores with
# fp32 accumulate, fp32). Matched in order against torch.cuda.get_device_name(): specific names first.
PEAK_TFLOPS: list[tuple[str, float, float]] = [
    ("H100 PCIe", 756.0, 51.0),
    ("H100 NVL", 835.0, 60.0),
    ("H100", 989.0, 67.0),  # SXM, e.g. "NVIDIA H100 80GB HBM3"
    ("H200", 989.0, 67.0),
    ("H800", 989.0, 67.0),
    ("A100", 312.0, 19.5),
    ("L40S", 362.0, 91.6),
    ("L40", 181.0, 90.5),
    ("RTX 6000 Ada", 364.0, 91.1),
    ("RTX A6000", 155.0, 38.7),
    ("RTX 4090", 165.2, 82.6),
    ("RTX 3090", 71.0, 35.6),
    ("V100", 125.0, 15.7),
    ("T4", 65.0, 8.1),
]
GENERATED = "gmf_repro.data.generated.GeneratedClips"
HALF = ("16-mixed", "bf16-mixed", "16", "bf16", "16-true", "bf16-true")


def peak_tflops(device_name: str, precision: str) -> float | None:
    """The card's dense peak for this precision (tensor cores for mixed precision, fp32 otherwise); None if unknown."""
    for name, half, fp32 in PEAK_TFLOPS:
        if name.lower() in device_name.lower():
            return half if str(precision) in HALF else fp32
    return None


def device_of(trainer_cfg: DictConfig) -> torch.device:
    gpu = torch.cuda.is_available() and trainer_cfg.get("accelerator", "auto") in ("auto", "gpu", "cuda")
    return torch.device("cuda", torch.cuda.current_device()) if gpu else torch.device("cpu")


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --- the data ----------------------------------------------------------------------------------------

def build_data(cfg: DictConfig, work_dir: Path) -> tuple[Any, str]:
    """The experiment's datamodule, set up: the real data when ``data.root`` holds it, else generated (bench.data)."""
    from hydra.utils import get_class

    cls = get_class(cfg.data._target_)
    media = issubclass(cls, AVClipDataModule)
    features = issubclass(cls, FeatureStoreDataModule)
    mode = cfg.bench.data
    if mode != "generated":
        try:
            dm = build(cfg.data, build_cache=False) if media else build(cfg.data)
            dm.setup("fit")
            where = dm.cache_dir if isinstance(dm, AVClipDataModule) else cfg.data.get("root", cfg.labels.data)
            return dm, f"real ({where})"
        except FileNotFoundError as err:
            if mode == "real" or not (media or features):
                raise
            reason = str(err).split(";")[0]
    else:
        reason = "bench.data=generated"
    if not (media or features):
        raise UserError(f"bench.data=generated needs a media or feature dataset, not data={cfg.labels.data}; "
                        f"give data.root= with the real files")
    num_classes = int(cfg.bench.num_classes.get(cfg.labels.data, 2))
    n_train, n_test = int(cfg.bench.clips), max(int(cfg.data.get("batch_size", 64)), int(cfg.bench.clips) // 8)
    data = OmegaConf.to_container(cfg.data, resolve=True)
    data.update(root=str(work_dir), cache_dir=None, build_cache=False, num_classes=num_classes)
    if media:
        data.update(_target_=GENERATED, n_train=n_train, n_test=n_test)
        dm = build(data)
        write_generated_cache(dm, seed=int(cfg.seed))
    else:
        data.update(n_train=n_train, n_test=n_test)
        media_dm = build({**data, "_target_": GENERATED, "media_target": None})
        write_generated_features(Path(media_dm.feature_dir), list(data.get("modalities", ["audio", "video"])),
                                 int(cfg.bench.feature_dim), num_classes, n_train, n_test, int(cfg.seed),
                                 media_dm.clip_list_hash)
        data["media_target"] = GENERATED
        dm = build(data)
    dm.setup("fit")
    return dm, f"generated ({reason}): {n_train} train clips of the real shapes, {num_classes} classes"


# --- the two training paths ----------------------------------------------------------------------------

def batches(loader: Any) -> Iterator[dict]:
    """Endless batches, epoch after epoch, with the sampler's epoch set as Lightning sets it."""
    epoch = 0
    while True:
        if isinstance(loader.sampler, EpochBatchSampler):  # our loaders' shuffle order: (seed, epoch)
            loader.sampler.set_epoch(epoch)
        yield from loader
        epoch += 1


def autocast_dtype(precision: str) -> torch.dtype | None:
    return {"16-mixed": torch.float16, "bf16-mixed": torch.bfloat16}.get(str(precision))


def plain_loop(task: pl.LightningModule, dm: Any, device: torch.device, precision: str, steps: int, warmup: int,
               split_steps: int) -> dict[str, Any]:
    """Train without Lightning: ``warmup`` steps, then ``split_steps`` synchronised at every phase (data wait /
    host-to-device / compute), then ``steps`` timed as a whole (synchronised only at both ends, as training runs)."""
    from torch.utils.flop_counter import FlopCounterMode

    task = task.to(device).train()
    opt = task.configure_optimizers()
    opt = opt["optimizer"] if isinstance(opt, dict) else opt
    dtype = autocast_dtype(precision)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype is torch.float16)
    loader = dm.train_dataloader()
    if isinstance(loader, DeviceTensorLoader) and loader.device != device:  # no Trainer: put it on our device
        s = loader.sampler
        loader = DeviceTensorLoader(loader.tensors, s.batch_size, s.shuffle, s.seed, device)
    it = batches(loader)

    def step(i: int, split: bool) -> tuple[float, float, int, Tensor]:
        t0 = time.perf_counter()
        batch = next(it)
        t1 = time.perf_counter()
        batch = {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}
        if split:
            sync(device)
        t2 = time.perf_counter()
        batch = dm.on_after_batch_transfer(batch, 0)  # the datamodule's device-side transform, as Lightning calls it
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = task.training_loss(batch)[0]  # the training step without Lightning's logging
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        return t1 - t0, t2 - t1, len(batch["label"]), loss

    # count FLOPs on the uncompiled graph
    with FlopCounterMode(display=False) as counter, torch.compiler.set_stance("force_eager"):
        step(0, False)  # the first step: FLOPs of one training step
    for i in range(1, warmup):
        step(i, False)
    parts: list[tuple[float, float, float]] = []
    for i in range(warmup, warmup + split_steps):
        sync(device)
        t0 = time.perf_counter()
        wait, h2d, _, _ = step(i, True)
        sync(device)
        parts.append((wait, h2d, time.perf_counter() - t0 - wait - h2d))
    sync(device)
    start, clips = time.perf_counter(), 0
    for i in range(warmup + split_steps, warmup + split_steps + steps):
        _, _, n, loss = step(i, False)
        clips += n
    sync(device)
    elapsed = time.perf_counter() - start
    mean = [sum(p[j] for p in parts) / max(len(parts), 1) for j in range(3)]
    return {"clips_per_s": clips / elapsed, "step_s": elapsed / steps, "data_wait_s": mean[0], "h2d_s": mean[1],
            "compute_s": mean[2], "clips_per_step": clips / steps, "flops_per_step": counter.get_total_flops(),
            "final_loss": float(loss.detach())}


class StepClock(pl.Callback):
    """Wall time from the end of the last warm-up step to the end of the last timed step (synchronised there only)."""

    def __init__(self, warmup: int, steps: int) -> None:
        self.warmup, self.steps, self.n, self.t0, self.t1, self.loss = warmup, steps, 0, None, None, None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.n += 1
        if self.n in (self.warmup, self.warmup + self.steps):
            sync(pl_module.device)
            now = time.perf_counter()
            if self.n == self.warmup:
                self.t0 = now
            else:
                self.t1 = now
                loss = outputs["loss"] if isinstance(outputs, dict) else outputs
                self.loss = float(loss.detach()) if loss is not None else None


def build_trainer(cfg: DictConfig, precision: str, callbacks: list, max_steps: int) -> pl.Trainer:
    """The run's Trainer config on one device, without logger, checkpoints or progress bar."""
    return build(cfg.trainer, precision=precision, devices=1, strategy="auto", max_steps=max_steps, max_epochs=-1,
                 logger=False, callbacks=callbacks, enable_checkpointing=False, enable_progress_bar=False,
                 enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0)


@torch.no_grad()
def test_accuracy(task: pl.LightningModule, dm: Any, device: torch.device, max_batches: int) -> float | None:
    """Top-1 accuracy over the first ``max_batches`` test batches (classification tasks only)."""
    if not isinstance(task, ClassificationTask):
        return None
    task.to(device).eval()
    right = seen = 0
    for i, batch in enumerate(dm.test_dataloader()):
        if i >= max_batches:
            break
        batch = model_inputs(dm, batch, device)
        right += int((task(batch).argmax(-1) == batch["label"]).sum())
        seen += len(batch["label"])
    task.train()
    return right / max(seen, 1)


# --- projections and the report --------------------------------------------------------------------------

def projections(cfg: DictConfig, clips_per_s: float, real_train_clips: int | None) -> list[dict[str, Any]]:
    """Wall time of each table this experiment trains: train clips x epochs x runs / clips per second."""
    rows = []
    for t in cfg.bench.tables:
        matches = any(str(cfg.experiment_name).startswith(e) for e in t.experiments)
        clips = real_train_clips if (matches and real_train_clips) else int(t.train_clips)
        hours = clips * t.epochs * t.runs / clips_per_s / 3600 if matches else None
        per_run = hours / t.runs if matches else None
        rows.append({"table": t.table, "experiment": t.experiments[0], "train_clips": clips, "epochs": int(t.epochs),
                     "runs": int(t.runs), "hours": hours, "hours_per_run": per_run})
    return rows


def fmt_time(hours: float) -> str:
    s = hours * 3600
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min" if s < 7200 else f"{hours:.1f} h"


def report(r: dict[str, Any]) -> str:
    p, lt = r["plain"], r["lightning"]
    mem = r["peak_memory_gib"]
    lines = [
        f"bench: experiment={r['experiment']} fuser={r['fuser']} data={r['data']} task={r['task']}",
        f"  data       : {r['source']}",
        f"  device     : {r['device']} ({r['device_name']}), {r['cpu_threads']} CPU threads, "
        f"precision {r['precision']}, batch {p['clips_per_step']:.0f}, {r['steps']} timed steps after "
        f"{r['warmup']} warm-up and {r['split_steps']} split steps",
        f"  model      : {r['params'] / 1e6:.2f}M trainable parameters; {r['flops_per_step'] / 1e9:.2f} GFLOP per "
        f"training step (FlopCounterMode, forward + backward, FLOPs = 2 x MACs)",
        f"  plain loop : {p['clips_per_s']:.4g} clips/s, step {1e3 * p['step_s']:.2f} ms; synchronised split: "
        f"data wait {1e3 * p['data_wait_s']:.2f} ms + host-to-device {1e3 * p['h2d_s']:.2f} ms + "
        f"compute {1e3 * p['compute_s']:.2f} ms",
    ]
    if lt:
        lines.append(f"  lightning  : {lt['clips_per_s']:.4g} clips/s ({lt['ratio_to_plain']:.2f}x the plain loop); "
                     f"step {1e3 * lt['step_s']:.2f} ms")
        acc = r.get("test_acc")
        agree = f"; test acc plain {acc['plain']:.4f}, lightning {acc['lightning']:.4f}" if acc else ""
        lines.append(f"  same steps : final loss plain {p['final_loss']:.6f}, lightning {lt['final_loss']:.6f}{agree}")
    lines.append(f"  peak memory: {'n/a (CPU)' if mem is None else f'{mem:.2f} GiB allocated on the GPU'}")
    tf, mfu, peak = r["achieved_tflops"], r["mfu"], r["peak_tflops"]
    mfu_s = f"MFU {100 * mfu:.1f}% of {peak:g} TFLOP/s peak" if mfu is not None else (
        "MFU n/a (CPU)" if r["device"] == "cpu" else "MFU n/a (card not in PEAK_TFLOPS; set bench.peak_tflops)")
    lines.append(f"  achieved   : {tf:.4g} TFLOP/s; {mfu_s}")
    lines.append(f"  projected wall time at {r['rate_for_projection']:.4g} clips/s (training only, this fuser):")
    for row in r["projections"]:
        when = f"{fmt_time(row['hours'])} ({fmt_time(row['hours_per_run'])} per run)" if row["hours"] is not None \
            else f"measure with experiment={row['experiment']}"
        lines.append(f"    table {row['table']:<22} {row['train_clips']:>7} clips x {row['epochs']:>2} epochs x "
                     f"{row['runs']:>2} runs: {when}")
    return "\n".join(lines)


def bench(cfg: DictConfig) -> dict[str, Any]:
    """Measure one experiment (see the module docstring); returns every figure, also printed."""
    check_settings(cfg)
    set_threads(cfg.get("threads"))
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    with open_dict(cfg):
        for ext in cfg.extractors.values():  # speed does not depend on the initial weights; no files needed
            if ext is not None and "weights" in ext:
                ext.weights = None
    device = device_of(cfg.trainer)
    precision = resolve_precision(cfg.trainer)
    steps, warmup, split_steps = int(cfg.bench.steps), max(1, int(cfg.bench.warmup)), int(cfg.bench.split_steps)
    with tempfile.TemporaryDirectory(prefix="gmf_bench_", dir=cfg.bench.get("work_dir")) as work:
        dm, source = build_data(cfg, Path(work))
        task = build_model(cfg, dm)
        clock = StepClock(warmup + split_steps, steps)
        # built first: it sets the determinism flags, for both paths
        trainer = build_trainer(cfg, precision, [clock], warmup + split_steps + steps)
        plain_task = copy.deepcopy(task)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        # the same seed before each path: a shuffling DataLoader draws its order from the global RNG
        pl.seed_everything(cfg.seed, workers=True, verbose=False)
        plain = plain_loop(plain_task, dm, device, precision, steps, warmup, split_steps)
        lightning = None
        if device.type == "cuda" and cfg.bench.lightning:  # peak memory of the path a run takes
            plain_task.to("cpu")
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        if cfg.bench.lightning:
            pl.seed_everything(cfg.seed, workers=True, verbose=False)
            trainer.fit(task, datamodule=dm)
            elapsed = clock.t1 - clock.t0
            lightning = {"clips_per_s": plain["clips_per_step"] * steps / elapsed, "step_s": elapsed / steps,
                         "final_loss": clock.loss}
            lightning["ratio_to_plain"] = lightning["clips_per_s"] / plain["clips_per_s"]
        test_acc = None
        if lightning and int(cfg.bench.test_batches) > 0:
            n = int(cfg.bench.test_batches)
            a, b = test_accuracy(plain_task, dm, device, n), test_accuracy(task, dm, device, n)
            test_acc = None if a is None else {"plain": a, "lightning": b}
        real_clips = len(dm.train_set) if source.startswith("real") and dm.train_set is not None else None
    rate = (lightning or plain)["clips_per_s"]
    step_s = (lightning or plain)["step_s"]
    flops = plain["flops_per_step"] or 0
    achieved = flops / step_s / 1e12
    name = device_name(device)
    peak = cfg.bench.peak_tflops or (peak_tflops(name, precision) if device.type == "cuda" else None)
    results = {
        "experiment": str(cfg.experiment_name), **labels_of(cfg), "source": source, "device": device.type,
        "device_name": name,
        "cpu_threads": torch.get_num_threads(), "precision": precision, "steps": steps, "warmup": warmup,
        "split_steps": split_steps,
        "params": sum(p.numel() for p in task.parameters() if p.requires_grad), "flops_per_step": flops,
        "plain": plain, "lightning": lightning, "test_acc": test_acc,
        "peak_memory_gib": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None,
        "achieved_tflops": achieved, "peak_tflops": peak, "mfu": achieved / peak if peak else None,
        "rate_for_projection": rate, "projections": projections(cfg, rate, real_clips),
        "torch": torch.__version__, "python": sys.version.split()[0],
    }
    print(report(results))
    if cfg.bench.get("out"):
        Path(cfg.bench.out).write_text(json.dumps(results, indent=1))
    return results


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="bench")
def hydra_main(cfg: DictConfig) -> None:
    from .__main__ import fail

    try:
        bench(cfg)
    except Exception as err:  # noqa: BLE001 - one line unless debugging, as `python -m gmf_repro`
        if env_flag("GMF_DEBUG") or env_flag("HYDRA_FULL_ERROR"):
            raise
        fail(err)


HELP = """usage: python -m gmf_repro.bench [key=value ...]

How fast an experiment trains on this machine, and what every paper table then costs. It builds the
experiment's real model, trains it bench.steps steps with a plain PyTorch loop and through Lightning (the
path a run takes) from the same weights, and prints clips/s of both, the split of a step into data wait /
host-to-device / compute, peak GPU memory, FLOPs per step, achieved TFLOP/s and MFU, and the projected wall
time of each table this experiment trains. Without data.root (or a cache there) it trains on generated data
of the real shapes; extractor weights are random (speed does not depend on them).

Options: every setting of a run (experiment=, fuser=, trainer=gpu, trainer.precision=, data.root=, ...;
`python -m gmf_repro --help`), and the benchmark's own, bench.KEY=VALUE (conf/bench.yaml; default in []):
{keys}

Examples:
  python -m gmf_repro.bench experiment=vggsound_trainable fuser=gmf                 # generated data, real shapes
  python -m gmf_repro.bench experiment=vggsound_frozen fuser=gmf trainer=gpu bench.steps=300
  python -m gmf_repro.bench experiment=fakeavceleb fuser=gmf data.root=/data/FakeAVCeleb_v1.2 bench.out=bench.json

More: docs/performance.md and docs/gpu.md (`make gpu-check` runs the GPU figures)."""


def bench_keys() -> list[tuple[str, str, str]]:
    """(key, default, description) of each ``bench.*`` setting, read from conf/bench.yaml: the comment lines above
    a key describe it, so the help and the file say the same."""
    from .config import compose

    defaults = OmegaConf.to_container(compose(config_name="bench").bench, resolve=False)
    keys, comment, inside = [], [], False
    for line in (CONF_DIR / "bench.yaml").read_text().splitlines():
        if line.startswith("bench:"):
            inside = True
        elif inside and line and not line.startswith(" "):
            break
        elif inside and line.startswith("  #"):
            comment.append(line.strip()[1:].strip())
        elif inside and line.startswith("  ") and not line.startswith("   ") and ":" in line:
            key = line.split(":", 1)[0].strip()
            value = defaults.get(key)
            shown = f"{len(value)} tables" if key == "tables" else json.dumps(value).replace('"', "")
            keys.append((key, shown, " ".join(comment)))
            comment = []
    return keys


def help_text() -> str:
    import textwrap

    rows = []
    for key, default, text in bench_keys():
        head = f"  bench.{key} [{default}]"
        rows.append(head + "\n" + textwrap.fill(text, width=108, initial_indent=" " * 6, subsequent_indent=" " * 6))
    return HELP.format(keys="\n".join(rows))


def main() -> None:
    from .__main__ import fail, flags_first
    from .config import check_command_line
    from .quiet import quiet_libraries

    if any(a in ("-h", "--help") for a in sys.argv[1:]):
        print(help_text())
        sys.exit(0)
    quiet_libraries(step_limit=True)  # the figures, not Lightning's tips, its deprecated internals or step-limit stops
    sys.argv = flags_first(sys.argv)
    try:  # a wrong setting or option is one line before anything is composed or built
        check_command_line(sys.argv[1:], "bench")
    except UserError as err:
        fail(err)
    hydra_main()


if __name__ == "__main__":
    main()

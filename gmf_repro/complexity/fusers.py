"""Fuser complexity as Table 2 reports it: parameters, FLOPs and CPU latency per sample.

Conventions: FLOPs come from ``torch.utils.flop_counter.FlopCounterMode`` and count
FLOPs = 2 x MACs (a d_in x d_out matmul on one sample is 2*d_in*d_out). Elementwise ops are not
counted. Latency is the median wall time of a forward pass at batch 1 in fp32 eval mode, after
warm-up, with a fixed number of CPU threads (recorded next to the number).
"""
from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Mapping
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ..build import build_fuser
from ..config import compose, group_options
from ..models.fusion.base import Fuser


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@torch.no_grad()
def count_flops(fuser: Fuser, batch_size: int = 1) -> int:
    """FLOPs of one forward pass (FLOPs = 2 x MACs) at ``batch_size``, divided by nothing."""
    inputs = fuser.example_inputs(batch_size)
    with FlopCounterMode(display=False) as counter:
        fuser(inputs)
    return int(counter.get_total_flops())


@torch.no_grad()
def cpu_latency(fuser: Fuser, threads: int = 1, warmup: int = 5, repeats: int = 50) -> float:
    """Median seconds per forward pass of one sample on the CPU with ``threads`` threads."""
    inputs = fuser.example_inputs(1)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for _ in range(warmup):
            fuser(inputs)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fuser(inputs)
            times.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(previous)
    return statistics.median(times)


def measure(fuser: Fuser, threads: int = 1, repeats: int = 50, latency: bool = True) -> dict[str, Any]:
    """Params, FLOPs and CPU latency of a fuser, measured on a CPU fp32 copy in eval mode."""
    probe = copy.deepcopy(fuser).to("cpu", torch.float32).eval()
    # heads a fuser uses only to train (its ``training_only`` submodules, e.g. AP-IVR's discriminator)
    # are not part of the model the paper's Params column counts: reported apart
    training_only = sum(count_params(probe.get_submodule(name)) for name in probe.training_only)
    result: dict[str, Any] = {"params": count_params(probe) - training_only, "flops": count_flops(probe)}
    if training_only:
        result["training_only_params"] = training_only
    if latency:
        result["cpu_latency_s"] = cpu_latency(probe, threads=threads, repeats=repeats)
        result["threads"] = threads
    return result


def paper_size(label: str, dims: Mapping[str, int], fuser_cfg: DictConfig | None = None,
               own: Mapping[str, Any] | None = None) -> dict[str, int] | None:
    """Params and FLOPs of fuser ``label``'s paper-size configuration (``conf/fuser/<label>.yaml``) at ``dims``.

    Runs record it in results.json (``complexity.paper_size``), so the report can put a demo-size run's
    Params/FLOPs beside the paper's like for like without building a model. ``own``: the run's own figures,
    returned as they are when its fuser config ``fuser_cfg`` is that configuration. None: the group has no
    such option, or it cannot take these dims."""
    if label not in group_options("fuser", nested=False):
        return None
    cfg = compose([f"fuser={label}"])
    if own is not None and fuser_cfg is not None and \
            OmegaConf.to_container(cfg.fuser, resolve=True) == OmegaConf.to_container(fuser_cfg, resolve=True):
        return {"params": int(own["params"]), "flops": int(own["flops"])}
    try:
        figures = measure(build_fuser(cfg, dims), latency=False)
    except Exception:  # noqa: BLE001 - a fuser that cannot take these dims has no paper-size figure
        return None
    return {"params": figures["params"], "flops": figures["flops"]}

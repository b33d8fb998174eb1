"""The one model builder: extractors + fuser + task from the config and the data (docs/architecture.md).

``run``, ``bench``, the complexity CLI, the runs' paper-size figures and the tests all build here, so a
model is assembled one way: one extractor per modality of the data (identity where none is configured),
the fuser at the extractors' output dims, the task around both.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytorch_lightning as pl
from omegaconf import DictConfig
from torch import nn

from .data.contract import MultimodalData
from .errors import UserError
from .models.fusion.base import Fuser
from .utils import build

IDENTITY = {"_target_": "gmf_repro.models.extractors.Identity", "_partial_": True}


def build_model(cfg: DictConfig, datamodule: MultimodalData) -> pl.LightningModule:
    """The task of ``cfg.task`` holding the extractors and the fuser for ``datamodule``'s modalities."""
    extractors = build_extractors(cfg, datamodule)
    fuser = build_fuser(cfg, {m: e.out_dim for m, e in extractors.items()}, datamodule.num_classes)
    return build(cfg.task, extractors=extractors, fuser=fuser, num_classes=datamodule.num_classes)


def build_extractors(cfg: DictConfig, datamodule: MultimodalData) -> dict[str, nn.Module]:
    """One extractor per modality of the data; a modality with no configured extractor uses Identity."""
    unknown = set(cfg.extractors) - set(datamodule.modalities)
    if unknown:
        raise UserError(
            f"extractors configured for {sorted(unknown)} but the data has modalities {datamodule.modalities}; "
            f"remove them or set data.modalities"
        )
    return {
        m: build(cfg.extractors.get(m) or IDENTITY)(input_shape=tuple(datamodule.input_shapes[m]))
        for m in datamodule.modalities
    }


def build_fuser(cfg: DictConfig, dims: Mapping[str, int], num_classes: int | None = None) -> Fuser:
    """The fuser of ``cfg.fuser`` for these feature dims. One with a classifier of its own (a ``num_classes``
    key in its config: UAVM, DrFuse, AP-IVR) predicts ``num_classes`` when given, whatever its YAML's
    paper-size default (which stays when none is given: the complexity CLI's figures)."""
    classes: dict[str, Any] = {"num_classes": num_classes} if num_classes is not None and "num_classes" in cfg.fuser \
        else {}
    return build(cfg.fuser)(dims=dict(dims), **classes)

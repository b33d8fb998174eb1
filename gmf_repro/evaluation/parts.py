"""Run the fuser over test data and estimate MI between its parts (claim 4), stored in results.json."""
from __future__ import annotations

from typing import Any

import torch

from ..data.contract import model_inputs
from ..models.multimodal import MultimodalModel
from .mutual_info import PartsCollector


@torch.no_grad()
def parts_analysis(model: MultimodalModel, datamodule: Any, device: torch.device | str, max_samples: int = 2000,
                   bootstrap: int = 1000) -> dict[str, Any]:
    """MI between the fuser's named parts and between its inputs, all modalities present; the fuser's
    ``exchanged_parts`` say which parts it concatenates crosswise (GMF's pairing).

    ``ci95`` holds 95% bootstrap intervals over the test samples (``bootstrap`` resamples; 0 = none).
    """
    was_training = model.training
    model.eval()
    collector = PartsCollector(max_samples)
    try:
        for batch in datamodule.test_dataloader():
            batch = model_inputs(datamodule, batch, device)
            feats = model.encode(batch)
            collector.update(model.fuser(feats).parts, feats)
            if collector.full:
                break
    finally:
        model.train(was_training)
    return collector.compute(bootstrap=bootstrap, exchanged=model.fuser.exchanged_parts)

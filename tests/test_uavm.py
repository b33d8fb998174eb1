"""UAVM with one modality absent: the present modality's logits alone (the release's one-modality evaluation,
``absent_logits: drop``, default) or averaged with the zero input's (``average``); the fuser learns which
modality is absent from the test condition (``Fuser.absent``), not from its input's values."""
from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
from conftest import make_cfg

from gmf_repro.build import build_model
from gmf_repro.errors import UserError
from gmf_repro.models.fusion.uavm import UAVM
from gmf_repro.run import evaluate
from gmf_repro.utils import build

DIMS = {"audio": 12, "video": 20}


def small(**kw) -> UAVM:
    torch.manual_seed(0)
    return UAVM(DIMS, num_classes=4, embed_dim=16, num_layers=1, num_heads=2, **kw).eval()


def test_drop_evaluates_the_present_branch_alone_and_average_adds_the_zero_input():
    feats = {"audio": torch.randn(5, 12), "video": torch.zeros(5, 20)}  # video absent: its fill
    alone = {m: small().classifier(small().encode(m, feats[m])) for m in DIMS}
    drop, average = small(), small(absent_logits="average")
    both = drop(feats).prediction
    torch.testing.assert_close(both, (alone["audio"] + alone["video"]) / 2)  # nothing marked absent: the average
    for fuser in (drop, average):
        fuser.absent = frozenset({"video"})
    out = drop(feats)
    torch.testing.assert_close(out.prediction, alone["audio"])
    assert set(out.logits) == {"audio"} and set(out.parts) == {"rep/audio"} and out.fused.shape == (5, 16)
    torch.testing.assert_close(average(feats).prediction, both)  # average: the zero input's logits count
    # the zero input's logits are one vector for every sample: averaging shifts every prediction by it
    assert torch.allclose(alone["video"], alone["video"][:1].expand(5, -1), atol=1e-5)
    with pytest.raises(UserError, match="absent_logits=mean is not one of"):
        small(absent_logits="mean")


QUIET = ["logger=none", "progress=none", "print_config=false", "trainer=cpu", "threads=1", "eval.latency_repeats=2",
         "eval.mutual_information=false", "checkpoint=none", "fuser=demo/uavm", "data.dims=[8,8]", "data.n_train=256",
         "data.n_test=96", "fuser.embed_dim=16", "fuser.num_layers=1", "fuser.num_heads=2"]


@pytest.mark.parametrize("absent_logits", ["drop", "average"])
def test_the_test_condition_tells_the_fuser_which_modality_is_absent(tmp_path, absent_logits):
    """Through Lightning's test loop: under A the fuser is told video is absent (and fed zeros for it), under AV
    nothing; after the test nothing is marked; what it predicts is the option's reading."""
    cfg = make_cfg(tmp_path, [*QUIET, f"fuser.absent_logits={absent_logits}"], tiny=False)
    datamodule = build(cfg.data)
    task = build_model(cfg, datamodule)
    fuser = task.fuser
    assert fuser.absent_logits == absent_logits
    seen: dict[str, list] = {}

    def hook(mod, args, out):
        feats = args[0]
        alone = mod.classifier(mod.encode("audio", feats["audio"]))
        zero_input = mod.classifier(mod.encode("video", torch.zeros_like(feats["video"])))
        seen.setdefault(str(task.condition), []).append(
            (mod.absent, feats["video"].abs().max().item(), out.prediction, alone, zero_input))

    fuser.register_forward_hook(hook)
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_checkpointing=False,
                         enable_model_summary=False)
    metrics = evaluate(trainer, task, datamodule, ["AV", "A"])
    assert set(metrics) == {"AV", "A"} and fuser.absent == frozenset()
    assert all(absent == frozenset() for absent, *_ in seen["AV"])
    for absent, video_max, prediction, alone, zero_input in seen["A"]:
        assert absent == frozenset({"video"}) and video_max == 0  # told, and fed the zero fill
        expect = alone if absent_logits == "drop" else (alone + zero_input) / 2
        torch.testing.assert_close(prediction, expect)

"""MultimodalModel: the one path from a batch to fused features, shared by both tasks."""
from __future__ import annotations

from functools import partial

import pytest
import torch

from gmf_repro.models.extractors import Identity
from gmf_repro.models.fusion.gmf import GMF
from gmf_repro.models.multimodal import MultimodalModel
from gmf_repro.tasks.classification import ClassificationTask
from gmf_repro.tasks.retrieval import RetrievalTask

DIMS = {"audio": 12, "video": 20}


def _task(cls=ClassificationTask, dims=DIMS):
    torch.manual_seed(0)
    extractors = {m: Identity((d,)) for m, d in dims.items()}
    return cls(extractors, GMF(dims), 3, optimizer=partial(torch.optim.SGD, lr=0.1))


def test_encode_and_forward_are_extractors_then_fuser() -> None:
    task = _task()
    model = task.model
    assert isinstance(model, MultimodalModel)
    assert task.extractors is model.extractors and task.fuser is model.fuser
    batch = {"audio": torch.randn(5, 12), "video": torch.randn(5, 20), "label": torch.zeros(5, dtype=torch.long)}
    feats = model.encode(batch)
    assert {m: tuple(f.shape) for m, f in feats.items()} == {"audio": (5, 12), "video": (5, 20)}
    assert set(model.encode(batch, ["video"])) == {"video"}
    model.eval()
    torch.testing.assert_close(model(batch).fused, model.fuser(feats).fused)
    torch.testing.assert_close(task.fuse(batch).fused, model(batch).fused)


def test_parameter_order_and_state_dict_keys() -> None:
    """Extractors, fuser, head: the order the optimiser saw before the model existed (same numbers per seed)."""
    task = _task()
    names = [n for n, _ in task.named_parameters()]
    fuser = [f"model.fuser.{n}" for n, _ in task.fuser.named_parameters()]
    assert names == [*fuser, "head.weight", "head.bias"]  # Identity extractors have no parameters
    assert all(k.startswith(("model.", "head.")) for k in task.state_dict())


def test_only_the_model_keys_load() -> None:
    """State-dict keys are ``model.*`` and ``head.*``; the unreleased flat layout (``fuser.*``) is not renamed."""
    old = _task().state_dict()
    task = _task()
    task.load_state_dict({k: v + 1.0 for k, v in old.items()})
    for k, v in task.state_dict().items():
        torch.testing.assert_close(v, old[k] + 1.0)
    flat = {k.removeprefix("model."): v for k, v in old.items()}
    with pytest.raises(RuntimeError, match='Missing key.*"model.fuser'):
        _task().load_state_dict(flat)


def test_retrieval_task_goes_through_the_same_model() -> None:
    task = _task(RetrievalTask, {"image": 12, "video": 20})
    assert isinstance(task.model, MultimodalModel) and task.model.modalities == ["image", "video"]
    batch = {"image": torch.randn(4, 12), "video": torch.randn(4, 20)}
    task.eval()
    assert task.features(batch).keys() == {"image", "video"}
    emb = task.embed(batch)
    assert {m: e.shape[0] for m, e in emb.items()} == {"image": 4, "video": 4}


def test_the_datamodule_contract_is_checked_with_one_line() -> None:
    """A datamodule is checked against MultimodalData before anything is built from it."""
    import pytest
    import pytorch_lightning as pl

    from gmf_repro.data.avsynth import AVSynthDataModule
    from gmf_repro.data.contract import MultimodalData, MultimodalDataModule, check_datamodule
    from gmf_repro.errors import UserError

    dm = AVSynthDataModule(n_train=20, n_test=10)
    assert isinstance(dm, MultimodalData) and check_datamodule(dm) is dm

    class NoShapes(MultimodalDataModule):
        modalities, num_classes = ["audio"], 2

        def train_dataloader(self): ...

        def test_dataloader(self): ...

    with pytest.raises(UserError, match="datamodule NoShapes lacks input_shapes; set them"):
        check_datamodule(NoShapes())

    class Plain(pl.LightningDataModule):  # the contract's defaults live in the base class
        modalities, num_classes, input_shapes = ["audio"], 2, {"audio": (3,)}

    with pytest.raises(UserError, match="datamodule Plain is not a gmf_repro.data.contract.MultimodalDataModule"):
        check_datamodule(Plain())
    defaults = NoShapes()
    assert (defaults.letters, defaults.has_val, defaults.describe_split(), defaults.val_dataloader()) == \
        ({"audio": "A"}, False, None, [])
    with pytest.raises(UserError, match="eval.missing=mean needs the train-split mean"):
        defaults.train_mean("audio")


def test_classification_logs_the_test_cross_entropy_per_condition(cfg_factory) -> None:
    """``test/{condition}/ce``: the mean cross-entropy (nats) of the evaluated prediction, per condition;
    a head that says nothing (all logits 0) scores ln(num_classes) whatever the input."""
    import math

    import pytorch_lightning as pl
    import torch.nn.functional as F

    from gmf_repro.build import build_model
    from gmf_repro.run import evaluate
    from gmf_repro.utils import build

    cfg = cfg_factory("fuser=concat", "data.n_train=64", "data.n_test=40", "data.dims=[4,6]")
    dm = build(cfg.data)
    dm.setup()
    task = build_model(cfg, dm).eval()
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_checkpointing=False,
                         enable_model_summary=False)
    metrics = evaluate(trainer, task, dm, ["AV", "A"])
    for condition, absent in (("AV", ()), ("A", ("video",))):
        logits, labels = [], []
        with torch.no_grad():
            for batch in dm.test_dataloader():
                batch = {k: torch.zeros_like(v) if k in absent else v for k, v in batch.items()}
                logits.append(task(batch))
                labels.append(batch["label"])
        ce = float(F.cross_entropy(torch.cat(logits), torch.cat(labels)))
        assert metrics[condition]["ce"] == pytest.approx(ce, rel=1e-5) and ce > 0
    assert metrics["A"]["ce"] != pytest.approx(metrics["AV"]["ce"])
    torch.nn.init.zeros_(task.head.weight)
    torch.nn.init.zeros_(task.head.bias)
    uniform = evaluate(trainer, task, dm, ["AV", "A"])
    assert uniform["AV"]["ce"] == pytest.approx(math.log(dm.num_classes)) == uniform["A"]["ce"]

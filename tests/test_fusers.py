"""The fusion zoo: every fuser trains on any named modalities, and matches its documented size.

The behavioural tests run every demo-size fuser (conf/fuser/demo/*.yaml, built from its yaml as a run builds
it), so a new fuser is tested the moment its demo yaml exists; the full-size parameter counts (docs/fusers.md)
are built from conf/fuser/*.yaml on the meta device.
"""
from __future__ import annotations

from functools import cache, partial

import pytest
import torch
from omegaconf import DictConfig, OmegaConf

from gmf_repro.build import build_fuser, build_model
from gmf_repro.config import compose, group_options
from gmf_repro.models.fusion.base import Fuser
from gmf_repro.models.fusion.drfuse import DrFuse
from gmf_repro.models.fusion.g_fusion import GFusion
from gmf_repro.models.fusion.gmf import GMF
from gmf_repro.models.fusion.misa import MISA
from gmf_repro.models.fusion.uavm import UAVM
from gmf_repro.utils import build

# Every demo-size fuser: a new conf/fuser/demo/<name>.yaml joins every test below with no edit here.
DEMO = group_options("fuser/demo")
# Behaviour a demo yaml does not reach, as an extra case built from that yaml with overrides (id: (fuser, overrides)).
EXTRA = {
    # demo MISA fixes its sLSTM width (utterance_dim 64, below its hidden 128); the official sLSTM as wide as
    # each input (utterance_dim null, as in the paper-size yaml) is SLSTM's other branch
    "misa_input_width_lstm": ("misa", ("utterance_dim=null",)),
}
CASES = [pytest.param(name, (), id=name) for name in DEMO] + [
    pytest.param(name, overrides, id=case) for case, (name, overrides) in EXTRA.items()
]


@cache
def _demo_cfg(name: str, overrides: tuple[str, ...] = ()) -> DictConfig:
    """One composition per case (a compose costs ~0.1 s; the tests build each fuser a dozen times); read-only."""
    cfg = compose([f"fuser=demo/{name}", *(f"fuser.{o}" for o in overrides)])
    OmegaConf.set_readonly(cfg, True)
    return cfg


def demo_fuser(name: str, dims: dict[str, int], overrides: tuple[str, ...] = (), num_classes: int = 5) -> Fuser:
    """conf/fuser/demo/<name>.yaml built as ``run()`` builds it (a fuser with a classifier gets ``num_classes``)."""
    torch.manual_seed(0)
    return build_fuser(_demo_cfg(name, tuple(overrides)), dims, num_classes)


# Full size for 512/512 inputs (docs/fusers.md); paper Table 2 in the comment.
PARAMS_512 = {
    "mbt": 37_831_680,  # 37.83M
    "perceiver": 45_050_880,  # 45.05M
    "uavm": 25_895_221,  # 25.70M (with its shared classifier, 309 classes)
    "avoid_df": 59_108_864,  # 57.45M
    "misa": 47_247_360,  # 50.88M
    "drfuse": 34_521_044,  # 37.33M (with its class-wise and branch heads, 309 classes)
    "g_mbt": 43_081_728,  # 43.08M
    "g_perceiver": 50_300_928,  # 50.31M
}
GMF_512 = 5_250_048


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models on a shared CPU: one intra-op thread is several times faster than oversubscribed ones."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _loss(out) -> torch.Tensor:
    """Every output a task trains on: fused, aux loss, extra logits, label losses (labels: class 0)."""
    loss = out.fused.float().pow(2).mean()
    loss = loss + sum((logits.float().pow(2).mean() for logits in out.logits.values()), torch.zeros(()))
    labels = torch.zeros(len(out.fused), dtype=torch.long)
    loss = loss + sum((fn(labels) for fn in out.label_losses.values()), torch.zeros(()))
    return loss if out.aux_loss is None else loss + out.aux_loss.float()


def _check_step(fuser: Fuser, feats: dict[str, torch.Tensor], bf16: bool = False) -> None:
    """Finite output of the right shape; finite gradients reach the inputs (the extractors train through
    them) and, for a fuser with weights of its own (concat has none), its parameters."""
    feats = {m: x.clone().requires_grad_() for m, x in feats.items()}
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        out = fuser(feats)
    assert out.fused.shape == (next(iter(feats.values())).shape[0], fuser.out_dim)
    assert torch.isfinite(out.fused.float()).all()
    if out.aux_loss is not None:
        assert out.aux_loss.ndim == 0 and torch.isfinite(out.aux_loss)
    fuser.zero_grad()
    _loss(out).backward()
    inputs = [x.grad for x in feats.values()]
    assert all(g is not None and torch.isfinite(g).all() for g in inputs), "an input received no finite gradient"
    assert any(g.abs().sum() > 0 for g in inputs)
    if next(fuser.parameters(), None) is None:
        return
    grads = [p.grad for p in fuser.parameters() if p.grad is not None]
    assert grads, "no parameter received a gradient"
    assert all(torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("bf16", [False, True], ids=["fp32", "bf16"])
@pytest.mark.parametrize("batch", [2, 64])
@pytest.mark.parametrize("name, overrides", CASES)
def test_forward_backward_unequal_dims(name: str, overrides: tuple[str, ...], batch: int, bf16: bool) -> None:
    fuser = demo_fuser(name, {"audio": 96, "video": 160}, overrides).train()
    _check_step(fuser, {"audio": torch.randn(batch, 96), "video": torch.randn(batch, 160)}, bf16)


@pytest.mark.parametrize("name, overrides", CASES)
def test_three_modalities(name: str, overrides: tuple[str, ...]) -> None:
    dims = {"audio": 48, "video": 64, "text": 32}
    try:
        fuser = demo_fuser(name, dims, overrides).train()
    except ValueError as err:  # a method defined on a pair (METER, MAP-IVR) refuses a third modality in one line
        if "exactly two modalities" not in str(err):
            raise
        pytest.skip(f"{name} fuses exactly two modalities: {err}")
    _check_step(fuser, {m: torch.randn(4, d) for m, d in dims.items()})


@pytest.mark.parametrize("zeroed", ["audio", "video"])
@pytest.mark.parametrize("name, overrides", CASES)
def test_missing_modality_zeros(name: str, overrides: tuple[str, ...], zeroed: str) -> None:
    """The paper's A/V conditions feed zeros for the absent modality: no error, no NaN, also in eval at batch 1."""
    dims = {"audio": 48, "video": 48}
    fuser = demo_fuser(name, dims, overrides).train()
    feats = {m: torch.zeros(8, d) if m == zeroed else torch.randn(8, d) for m, d in dims.items()}
    _check_step(fuser, feats)
    fuser.eval()
    with torch.no_grad():
        out = fuser({m: t[:1] for m, t in feats.items()})
    assert torch.isfinite(out.fused).all()


@pytest.mark.parametrize("name", list(PARAMS_512))
def test_full_size_params(name: str) -> None:
    """The YAML builds through the project's `build` and has exactly the documented size."""
    with torch.device("meta"):
        fuser = build(compose([f"fuser={name}"]).fuser)(dims={"audio": 512, "video": 512})
    assert sum(p.numel() for p in fuser.parameters()) == PARAMS_512[name]


def test_g_wrappers_add_gmf_unchanged() -> None:
    assert PARAMS_512["g_mbt"] == PARAMS_512["mbt"] + GMF_512
    assert PARAMS_512["g_perceiver"] == PARAMS_512["perceiver"] + GMF_512
    with torch.device("meta"):
        gmf = GMF(dims={"audio": 512, "video": 512})
    assert sum(p.numel() for p in gmf.parameters()) == GMF_512


@pytest.mark.parametrize("backend", ["g_mbt", "g_perceiver"])
def test_g_wrapper_routing_by_gradients(backend: str) -> None:
    """Invariant parts reach the head directly; only the specific parts feed the back-end."""
    dims = {"audio": 40, "video": 56}
    fuser = demo_fuser(backend, dims).eval()  # no dropout noise
    feats = {m: torch.randn(4, d) for m, d in dims.items()}
    inv_width = fuser.inv_dim
    assert inv_width == min(dims.values()) * len(dims)

    def grads_of(select) -> tuple[dict[str, float], dict[str, float], float]:
        fuser.zero_grad(set_to_none=True)
        out = fuser(feats)
        select(out.fused).sum().backward()

        def size(p: torch.nn.Parameter) -> float:
            return 0.0 if p.grad is None else float(p.grad.abs().sum())

        inv = {m: size(fuser.gmf.branches[m].concentrate_inv.weight) for m in dims}
        spec = {m: size(fuser.gmf.branches[m].concentrate_spec.weight) for m in dims}
        back = sum(size(p) for p in fuser.backend.parameters())
        return inv, spec, back

    inv, spec, back = grads_of(lambda f: f[:, :inv_width])
    assert all(v > 0 for v in inv.values()) and all(v == 0 for v in spec.values()) and back == 0
    inv, spec, back = grads_of(lambda f: f[:, inv_width:])
    assert all(v == 0 for v in inv.values()) and all(v > 0 for v in spec.values()) and back > 0


def test_g_wrapper_aux_loss_is_gmf_reconstruction_plus_backend() -> None:
    torch.manual_seed(0)
    dims = {"audio": 32, "video": 48}
    misa = partial(MISA, hidden=16, dim_feedforward=32)
    fuser = GFusion(dims, backend=misa).eval()
    feats = {m: torch.randn(6, d) for m, d in dims.items()}
    with torch.no_grad():
        out = fuser(feats)
        inv, spec = fuser.gmf.decompose(feats)
        recon = fuser.gmf.reconstruction_loss(fuser.gmf.exchange(inv, spec), feats)
        back = fuser.backend(spec)
    torch.testing.assert_close(out.aux_loss, recon + back.aux_loss)
    torch.testing.assert_close(out.fused, torch.cat([inv["audio"], inv["video"], back.fused], dim=-1))


@pytest.mark.parametrize("name", DEMO)
def test_tiny_fit_beats_chance(name: str, cfg_factory) -> None:
    """Each demo-size fuser, built from its YAML, learns avsynth (10 classes) well above chance.

    A plain loop over the task's own modules (extractors, fuser, head, optimizer from config) with
    the task's loss terms (`loss_terms`) keeps this fast; `run()` itself is covered by the
    end-to-end tests.
    """
    # the earlier avsynth structure (every class in both modalities): with modality-specific classes a
    # MISA of hidden 32 stays near chance (0.17) in 4 epochs; the demo-size MISA (hidden 128) reaches 0.59 there
    cfg = cfg_factory(f"fuser=demo/{name}", "data=avsynth_shared", "data.n_train=500", "data.n_test=500",
                      "data.dims=[32,48]")
    torch.manual_seed(cfg.seed)
    data = build(cfg.data)
    data.setup("fit")
    task = build_model(cfg, data)
    opt = task.configure_optimizers()
    opt = opt["optimizer"] if isinstance(opt, dict) else opt
    task.train()
    for _ in range(4):
        for batch in data.train_dataloader():
            loss = sum(task.loss_terms(task.fuse(batch), batch["label"]).values())
            opt.zero_grad()
            loss.backward()
            opt.step()
    task.eval()
    correct = total = 0
    with torch.no_grad():
        for batch in data.test_dataloader():
            correct += int((task(batch).argmax(-1) == batch["label"]).sum())
            total += len(batch["label"])
    acc = correct / total
    assert acc > 0.3, f"{name}: AV accuracy {acc:.3f} after 4 epochs, chance is 0.1"


# --- the baselines' own objectives (issue: protocol fidelity) -----------------------------------------------


def _task(fuser: Fuser, num_classes: int):
    from gmf_repro.models.extractors import Identity
    from gmf_repro.tasks.classification import ClassificationTask

    extractors = {m: Identity((d,)) for m, d in fuser.dims.items()}
    return ClassificationTask(extractors, fuser, num_classes, optimizer=partial(torch.optim.SGD, lr=0.01))


def test_uavm_each_modality_prediction_gets_its_own_loss() -> None:
    """Official UAVM: the loss goes on each modality's own prediction through the shared blocks and the
    shared classifier; the averaged logits are only the test-time prediction (no head, no loss of its own)."""
    torch.manual_seed(0)
    dims = {"audio": 24, "video": 40}
    fuser = UAVM(dims, num_classes=5, embed_dim=32, num_layers=2, num_heads=4).eval()
    task = _task(fuser, 5)
    assert task.head is None
    batch = {m: torch.randn(6, d) for m, d in dims.items()}
    labels = torch.tensor([0, 1, 2, 3, 4, 0])
    out = task.fuse(batch)
    for logits in out.logits.values():
        logits.retain_grad()
    terms = task.loss_terms(out, labels)
    assert set(terms) == {"audio", "video"}
    for m in dims:  # each modality through the same blocks and classifier, alone
        alone = fuser.classifier(fuser.encode(m, batch[m]))
        torch.testing.assert_close(out.logits[m], alone)
        torch.testing.assert_close(terms[m], 0.5 * torch.nn.functional.cross_entropy(alone, labels))
    torch.testing.assert_close(out.prediction, (out.logits["audio"] + out.logits["video"]) / 2)
    torch.testing.assert_close(task({**batch, "label": labels}), out.prediction)
    sum(terms.values()).backward()
    for m in dims:
        assert out.logits[m].grad.abs().sum() > 0
    # the official a_tr_prob as weights; weights that are not probabilities fail with a one-line fix
    weighted = UAVM(dims, num_classes=5, embed_dim=32, num_layers=1, num_heads=4,
                    modality_weights={"audio": 0.7, "video": 0.3})
    assert weighted(batch).logit_weights == {"audio": 0.7, "video": 0.3}
    from gmf_repro.errors import UserError
    with pytest.raises(UserError, match="modality_weights"):
        UAVM(dims, num_classes=5, embed_dim=32, num_layers=1, num_heads=4, modality_weights={"audio": 1.0})


def test_drfuse_predicts_class_k_from_representation_k() -> None:
    """DrFuse's final logit of class k depends on class k's attention key alone (official final_pred_fc + diagonal)."""
    torch.manual_seed(0)
    dims, K, h = {"audio": 16, "video": 24}, 4, 32
    fuser = DrFuse(dims, num_classes=K, hidden=h, num_heads=4, dim_feedforward=64, num_layers=1).eval()
    feats = {m: torch.randn(3, d) for m, d in dims.items()}
    for k in range(K):
        fuser.zero_grad(set_to_none=True)
        out = fuser(feats)
        assert out.prediction is out.logits["final"]
        out.prediction[:, k].sum().backward()
        grad = fuser.attn_proj.weight.grad.view(2 + K, h, h).abs().sum(dim=(1, 2))  # query, value, key_1..key_K
        assert grad[2 + k] > 0
        assert all(grad[2 + j] == 0 for j in range(K) if j != k)


def test_drfuse_objective_is_the_official_one() -> None:
    """Final prediction + per-branch predictions (shared, each specific) + disentanglement + attention ranking,
    each term named; the ranking loss equals the official formula (BCE of the branch probabilities)."""
    torch.manual_seed(0)
    dims, K = {"audio": 16, "video": 24}, 5
    fuser = DrFuse(dims, num_classes=K, hidden=32, num_heads=4, dim_feedforward=64, num_layers=1).eval()
    task = _task(fuser, K)
    assert task.head is None
    feats = {m: torch.randn(8, d) for m, d in dims.items()}
    labels = torch.tensor([0, 1, 2, 3, 4, 0, 1, 2])
    out = fuser(feats)
    terms = task.loss_terms(out, labels)
    assert set(terms) == {"final", "shared", "spec/audio", "spec/video", "aux", "attn_rank"}
    ce = torch.nn.functional.cross_entropy
    for name in ("final", "shared", "spec/audio", "spec/video"):
        torch.testing.assert_close(terms[name], ce(out.logits[name], labels))

    # the official ranking loss (drfuse_trainer.py) on given branch logits and class-wise attention weights,
    # tokens [EHR=audio, shared, CXR=video]
    branch = {n: torch.randn(8, K) for n in ("spec/audio", "shared", "spec/video")}
    weights = torch.randn(8, K, 3).softmax(-1)
    onehot = torch.nn.functional.one_hot(labels, K).float()

    def raw(name: str) -> torch.Tensor:
        return torch.nn.functional.binary_cross_entropy(branch[name].softmax(-1), onehot, reduction="none")

    ehr, shared, cxr = raw("spec/audio"), raw("shared"), raw("spec/video")
    a_ehr, a_shared, a_cxr = weights[..., 0], weights[..., 1], weights[..., 2]

    def rank(x1, x2, loss1, loss2):
        loss = torch.nn.functional.margin_ranking_loss(x1, x2, 2 * (loss1 < loss2).float() - 1, reduction="none")
        return loss.sum() / max(1e-6, loss[loss > 0].numel())

    pairs = [(a_cxr, a_ehr, cxr, ehr), (a_shared, a_ehr, shared, ehr), (a_shared, a_cxr, shared, cxr)]
    expected = sum(rank(*pair) for pair in pairs) / 3
    torch.testing.assert_close(fuser.attention_ranking(branch, weights, labels), expected)
    assert terms["attn_rank"] > 0
    # its gradient reaches the attention, not the branch heads (their losses are constants there)
    fuser.zero_grad(set_to_none=True)
    out.label_losses["attn_rank"](labels).backward()
    assert fuser.attn_proj.weight.grad.abs().sum() > 0
    assert fuser.shared_head.weight.grad is None


def test_fusers_with_their_own_classifier_follow_the_data(cfg_factory) -> None:
    """run() gives UAVM and DrFuse the data's class count; a fuser built for another count fails with the fix."""
    from gmf_repro.errors import UserError

    for name in ("uavm", "drfuse"):
        cfg = cfg_factory(f"fuser=demo/{name}", "data.num_classes=3")
        fuser = build_fuser(cfg, {"audio": 16, "video": 16}, 3)
        assert fuser.num_classes == 3
        assert fuser({m: torch.randn(2, 16) for m in ("audio", "video")}).prediction.shape == (2, 3)
        with pytest.raises(UserError, match="set fuser.num_classes=7"):
            _task(fuser, 7)


def test_misa_difference_loss_detaches_the_row_norms() -> None:
    """Official DiffLoss: rows divided by their detached L2 norms; the gradient differs from the live-norm one."""
    from gmf_repro.models.fusion.misa import difference

    torch.manual_seed(0)
    x1, x2 = torch.randn(6, 5, requires_grad=True), torch.randn(6, 5, requires_grad=True)

    def manual(detach: bool) -> torch.Tensor:
        c1, c2 = x1 - x1.mean(0, keepdim=True), x2 - x2.mean(0, keepdim=True)
        n1, n2 = c1.norm(dim=1, keepdim=True), c2.norm(dim=1, keepdim=True)
        if detach:
            n1, n2 = n1.detach(), n2.detach()
        return ((c1 / (n1 + 1e-6)).t() @ (c2 / (n2 + 1e-6))).pow(2).mean()

    grads = {}
    for name, fn in (("ours", lambda: difference(x1, x2)), ("detached", lambda: manual(True)),
                     ("live", lambda: manual(False))):
        x1.grad = x2.grad = None
        fn().backward()
        grads[name] = x1.grad.clone()
    torch.testing.assert_close(difference(x1, x2), manual(False))  # same value either way
    torch.testing.assert_close(grads["ours"], grads["detached"])
    assert (grads["ours"] - grads["live"]).abs().max() > 1e-3


@pytest.mark.parametrize("overrides, names", [
    (["fuser=demo/drfuse", "fuser.hidden=32", "fuser.dim_feedforward=64", "data.dims=[16,24]"],
     ["final", "spec/audio", "shared", "spec/video", "aux", "attn_rank"]),
    # retrieval logs its terms the same way (tasks/base.py): the triplet loss and GMF's L_dis
    (["data=synth_retrieval", "task=retrieval", "eval.conditions=[IV]", "fuser=retrieval/gmf", "data.dims=[8,12]"],
     ["rank", "aux"]),
], ids=["classification", "retrieval"])
def test_training_step_logs_every_named_loss(cfg_factory, overrides: list[str], names: list[str]) -> None:
    """Lightning's training step sums the task's named terms and logs each as train/loss/<name>."""
    import pytorch_lightning as pl

    cfg = cfg_factory(*overrides, "data.n_train=256")
    data = build(cfg.data)
    task = build_model(cfg, data)
    trainer = pl.Trainer(max_epochs=1, limit_train_batches=2, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(task, datamodule=data)
    logged = {k: float(v) for k, v in trainer.callback_metrics.items()}
    assert {f"train/loss/{n}" for n in names} <= set(logged) and "train/loss_step" in logged
    assert {k for k in logged if k.startswith("train/loss/")} == {f"train/loss/{n}" for n in names}
    assert not any(k.startswith(("train/aux_loss", "train/class_loss", "train/rank_loss")) for k in logged)
    assert logged["train/loss"] == pytest.approx(sum(logged[f"train/loss/{n}"] for n in names), rel=1e-5)

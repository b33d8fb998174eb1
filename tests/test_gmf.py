"""GMF against docs/paper.md §1: parameter counts to the parameter, shapes, and where L_dis's gradient goes."""
from functools import partial

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from gmf_repro.complexity import count_flops, count_params
from gmf_repro.models.fusion.g_fusion import GFusion
from gmf_repro.models.fusion.gmf import GMF
from gmf_repro.models.fusion.mbt import MBT


@pytest.mark.parametrize(
    "dims, expected",
    [
        ({"audio": 512, "video": 512}, 5_250_048),
        ({"image": 128, "video": 128}, 329_472),
        ({"image": 128, "video": 4096}, 119_202_816),
    ],
)
def test_param_counts_match_spec(dims, expected):
    with torch.device("meta"):
        gmf = GMF(dims, n=4, beta=0.5)
    assert count_params(gmf) == expected


def test_shapes_two_modalities_unequal_dims():
    gmf = GMF({"image": 32, "video": 80}, n=4, beta=0.5)
    out = gmf({"image": torch.randn(5, 32), "video": torch.randn(5, 80)})
    # z_j = concat(inv_{j+1}, spec_j): inv has l* = 32 dims, spec_j has l_j dims
    assert out.fused.shape == (5, (32 + 32) + (32 + 80))
    assert gmf.out_dim == 176
    assert out.parts["inv/image"].shape == (5, 32) and out.parts["inv/video"].shape == (5, 32)
    assert out.parts["spec/image"].shape == (5, 32) and out.parts["spec/video"].shape == (5, 80)
    assert out.aux_loss.ndim == 0 and out.aux_loss.item() > 0


def test_three_modalities_cyclic_exchange():
    dims = {"audio": 24, "video": 40, "text": 16}
    gmf = GMF(dims, n=2, beta=0.25)
    feats = {m: torch.randn(3, d) for m, d in dims.items()}
    out = gmf(feats)
    assert gmf.branches["audio"].boundary == int(0.25 * 2 * 24)
    assert out.fused.shape == (3, sum(16 + d for d in dims.values()))
    inv, spec = gmf.decompose(feats)
    z = gmf.exchange(inv, spec)
    # audio carries video's invariant part, video carries text's, text carries audio's
    assert torch.equal(z["audio"][:, :16], inv["video"])
    assert torch.equal(z["video"][:, :16], inv["text"])
    assert torch.equal(z["text"][:, :16], inv["audio"])
    assert torch.equal(out.fused[:, : 16 + 24], z["audio"])


@pytest.mark.parametrize("detach, reaches_input", [(True, False), (False, True)])
def test_reconstruction_gradient_reaches_input_only_when_not_detached(detach, reaches_input):
    gmf = GMF({"audio": 16, "video": 24}, detach_target=detach)
    # the extractor's output: a leaf we can read the gradient of
    feats = {"audio": torch.randn(4, 16, requires_grad=True), "video": torch.randn(4, 24, requires_grad=True)}
    # isolate the target term: with detached *inputs to the matrices*, only the target path remains
    inv, spec = gmf.decompose({m: x.detach() for m, x in feats.items()})
    z = gmf.exchange(inv, spec)
    gmf.reconstruction_loss(z, feats).backward()
    for x in feats.values():
        assert (x.grad is not None and x.grad.abs().sum() > 0) == reaches_input
    # and GMF's own matrices always learn from L_dis
    assert gmf.branches["audio"].reconstruct.weight.grad.abs().sum() > 0


def test_lam_scales_the_loss_and_bad_beta_is_rejected():
    feats = {"audio": torch.randn(4, 8), "video": torch.randn(4, 8)}
    torch.manual_seed(0)
    a = GMF({"audio": 8, "video": 8}, lam=1.0)(feats).aux_loss
    torch.manual_seed(0)
    b = GMF({"audio": 8, "video": 8}, lam=0.5)(feats).aux_loss
    assert torch.allclose(b, 0.5 * a)
    with pytest.raises(ValueError, match="beta"):
        GMF({"audio": 8, "video": 8}, beta=1.0)


def test_mismatched_dims_give_a_clear_error():
    gmf = GMF({"audio": 8, "video": 8})
    with pytest.raises(ValueError, match="modality 'video' has feature dim 12 but the fuser was built for 8"):
        gmf({"audio": torch.randn(2, 8), "video": torch.randn(2, 12)})


def _input_grads(fuser, feats, which: str) -> tuple[dict, dict]:
    """Gradients of the input features and of the fuser's parameters from one loss: ``dis`` (L_dis) or ``task``."""
    xs = {m: x.clone().requires_grad_(True) for m, x in feats.items()}  # a trainable extractor's output
    fuser.zero_grad(set_to_none=True)
    out = fuser(xs)
    loss = out.aux_loss if which == "dis" else out.fused.pow(2).mean()
    loss.backward()
    params = {n: p.grad.clone() for n, p in fuser.named_parameters() if p.grad is not None}
    return {m: x.grad for m, x in xs.items()}, params


@pytest.mark.parametrize("wrapper", ["gmf", "g_mbt"])
def test_dis_loss_sends_no_gradient_into_the_extractor(wrapper):
    """docs/paper.md §1: with detach_target, dL_dis/dx = 0 exactly (target and reconstruction path); without it, not.
    The task path reaches the input either way, and GMF's matrices get the same L_dis gradient either way."""
    dims = {"audio": 16, "video": 24}
    feats = {m: torch.randn(6, d) for m, d in dims.items()}
    backend = partial(MBT, d_model=16, num_layers=1, num_heads=2, dim_feedforward=32, num_bottlenecks=2,
                      fusion_layer=0)
    grads = {}
    for detach in (True, False):
        torch.manual_seed(0)
        fuser = GMF(dims, detach_target=detach) if wrapper == "gmf" else GFusion(dims, backend, detach_target=detach)
        fuser.eval()  # no dropout noise: the two flags must see identical computations
        dis_x, dis_params = _input_grads(fuser, feats, "dis")
        task_x, _ = _input_grads(fuser, feats, "task")
        assert all(g is not None and g.abs().sum() > 0 for g in task_x.values())
        grads[detach] = dis_x, dis_params
    cut, cut_params = grads[True]
    live, live_params = grads[False]
    assert all(g is None or torch.count_nonzero(g) == 0 for g in cut.values())
    assert all(g is not None and g.abs().sum() > 0 for g in live.values())
    gmf_names = [n for n in live_params if "branches" in n]
    assert len(gmf_names) == 4 * 2 * 2  # 4 Linear layers x (weight, bias) x 2 modalities all learn from L_dis
    assert set(gmf_names) <= set(cut_params)
    for n in gmf_names:
        torch.testing.assert_close(cut_params[n], live_params[n])


def test_gradient_cut_costs_flops_only_when_the_input_carries_a_gradient():
    """Params and eval FLOPs of the paper's 512/512 GMF are unchanged (5,250,048; 2 x 5,242,880 MACs);
    a training forward on a trainable extractor's output runs dissolve + concentrate twice."""
    gmf = GMF({"audio": 512, "video": 512})
    assert count_params(gmf) == 5_250_048
    assert count_flops(gmf.eval()) == 10_485_760
    gmf.train()
    for requires_grad, expected in ((False, 10_485_760), (True, 10_485_760 + 2 * 2 * (512 * 2048 + 2 * 1024 * 512))):
        feats = {m: torch.randn(1, 512, requires_grad=requires_grad) for m in ("audio", "video")}
        with FlopCounterMode(display=False) as counter:
            gmf(feats)
        assert counter.get_total_flops() == expected

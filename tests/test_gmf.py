"""GMF against SPEC.md §1: parameter counts to the parameter, shapes, and where L_dis's gradient goes."""
import pytest
import torch

from gmf_repro.evaluation.complexity import count_params
from gmf_repro.models.fusion.gmf import GMF


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

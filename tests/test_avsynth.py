"""avsynth's structure: modality-specific classes, per-sample reliability, correlated nuisance, the old preset."""
from __future__ import annotations

import pytest
import torch
from conftest import make_cfg

from gmf_repro.data.avsynth import AVSynthDataModule
from gmf_repro.errors import UserError
from gmf_repro.utils import build as instantiate


def probe_accuracy(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor) -> float:
    """A linear probe (L2-regularised logistic regression, LBFGS) on standardised features."""
    mu, sd = train_x.mean(0), train_x.std(0) + 1e-6
    train_x, test_x = (train_x - mu) / sd, (test_x - mu) / sd
    labels = {int(c): i for i, c in enumerate(train_y.unique())}
    ty = torch.tensor([labels[int(c)] for c in train_y])
    torch.manual_seed(0)
    lin = torch.nn.Linear(train_x.shape[1], len(labels))
    opt = torch.optim.LBFGS(lin.parameters(), max_iter=100)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(lin(train_x), ty) + 1e-2 * lin.weight.square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    pred = lin(test_x).argmax(1)
    return float((pred == torch.tensor([labels[int(c)] for c in test_y])).float().mean())


@pytest.fixture(scope="module")
def cfg_module(tmp_path_factory):
    return make_cfg(tmp_path_factory.mktemp("run"), ["data.dims=[64,64]", "data.n_train=3000", "data.n_test=2000"],
                    tiny=False)


@pytest.fixture(scope="module")
def data(cfg_module) -> AVSynthDataModule:
    dm = instantiate(cfg_module.data)
    dm.setup()
    return dm


def test_defaults_mix_all_four_structures(cfg_module) -> None:
    d = cfg_module.data
    assert d.specific_share == 0.2 and d.one_modality_noise_share == 0.3
    assert d.correlated_nuisance > 0 and d.shared_noise > 0


def test_specific_classes_are_unreadable_from_the_other_modality(data: AVSynthDataModule) -> None:
    assert data.specific == {"audio": [8, 9], "video": [6, 7]}  # 6 shared classes, 2 per modality alone
    tr, te = data.train_set.tensors, data.test_set.tensors
    for owner, other in (("audio", "video"), ("video", "audio")):
        classes = torch.tensor(data.specific[owner])
        mtr, mte = torch.isin(tr["label"], classes), torch.isin(te["label"], classes)
        ytr, yte = tr["label"][mtr], te["label"][mte]
        own = probe_accuracy(tr[owner][mtr], ytr, te[owner][mte], yte)
        cross = probe_accuracy(tr[other][mtr], ytr, te[other][mte], yte)
        # chance is 1/2 among two classes; ~400 test samples: a 0.08 band is about 3 standard errors
        assert cross == pytest.approx(0.5, abs=0.08), (owner, other, cross)
        assert own > 0.75, (owner, own)


def test_shared_classes_are_readable_from_both(data: AVSynthDataModule) -> None:
    tr, te = data.train_set.tensors, data.test_set.tensors
    shared = torch.arange(6)
    mtr, mte = torch.isin(tr["label"], shared), torch.isin(te["label"], shared)
    for m in ("audio", "video"):
        acc = probe_accuracy(tr[m][mtr], tr["label"][mtr], te[m][mte], te["label"][mte])
        assert acc > 0.45, (m, acc)  # chance 1/6; the unreliable samples and noise cap it well below 1


def test_correlated_nuisance_is_class_unrelated_and_common() -> None:
    kw = dict(dims=(32, 32), n_train=2000, n_test=10, seed=3, specific_share=0.0, one_modality_noise_share=0.0)
    base = AVSynthDataModule(**kw, correlated_nuisance=0.0)
    more = AVSynthDataModule(**kw, correlated_nuisance=2.0)
    base.setup(), more.setup()
    b, m = base.train_set.tensors, more.train_set.tensors
    assert torch.equal(b["label"], m["label"])  # the nuisance comes from its own random stream
    added = {k: m[k] - b[k] for k in ("audio", "video")}
    # the added parts of the two modalities are driven by one common factor: canonical correlation ~1
    qa, _ = torch.linalg.qr(added["audio"] - added["audio"].mean(0))
    qv, _ = torch.linalg.qr(added["video"] - added["video"].mean(0))
    rho = torch.linalg.svdvals(qa[:, :8].T @ qv[:, :8])
    assert rho.min() > 0.99
    # and unrelated to the class: class means of the added part differ only by sampling noise
    means = torch.stack([added["audio"][b["label"] == c].mean(0) for c in range(10)])
    assert means.std(0).mean() < 0.2 * added["audio"].std(0).mean()


def test_shared_preset_reproduces_the_earlier_structure(cfg_factory) -> None:
    cfg = cfg_factory("data=avsynth_shared", "data.n_train=50", "data.n_test=20")
    dm = instantiate(cfg.data)
    dm.setup()
    assert dm.specific == {"audio": [], "video": []} and cfg.data.correlated_nuisance == 0.0
    # the earlier generator, verbatim: shared latent, own noise, one modality dropped, nuisance, white noise
    g = torch.Generator().manual_seed(cfg.seed)
    protos = torch.randn(10, 16, generator=g)
    proj = {}
    for m in ("audio", "video"):
        proj[m] = (torch.randn(16, 64, generator=g) / 4.0, torch.randn(32, 64, generator=g) / 32**0.5)
    labels = torch.randint(10, (50,), generator=g)
    shared = protos[labels] + torch.randn(50, 16, generator=g)
    dropped = torch.rand(50, generator=g) < 0.3
    which = torch.randint(2, (50,), generator=g)
    for j, m in enumerate(("audio", "video")):
        own = shared + 1.5 * torch.randn(50, 16, generator=g)
        own[dropped & (which == j)] = 0.0
        x = own @ proj[m][0] + torch.randn(50, 32, generator=g) @ proj[m][1] + 0.5 * torch.randn(50, 64, generator=g)
        assert torch.equal(dm.train_set.tensors[m], x)
    assert torch.equal(dm.train_set.tensors["label"], labels)


def test_use_serves_one_modality_of_the_same_samples() -> None:
    both = AVSynthDataModule(dims=(16, 16), n_train=40, n_test=10, specific_share=0.2, correlated_nuisance=1.0)
    audio = AVSynthDataModule(dims=(16, 16), n_train=40, n_test=10, specific_share=0.2, correlated_nuisance=1.0,
                              use=["audio"])
    both.setup(), audio.setup()
    assert audio.modalities == ["audio"] and audio.input_shapes == {"audio": (16,)} and audio.dims == [16]
    assert "video" not in audio.train_set.tensors
    assert torch.equal(audio.test_set.tensors["audio"], both.test_set.tensors["audio"])
    with pytest.raises(UserError, match="data.use"):
        AVSynthDataModule(use=["text"])
    with pytest.raises(UserError, match="specific_share"):
        AVSynthDataModule(num_classes=4, specific_share=0.5)

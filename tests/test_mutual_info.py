"""The MI estimator against Gaussians with known MI, and the GMF part pairing it reports."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gmf_repro.evaluation.mutual_info import (
    PartsCollector,
    gaussian_mutual_information,
    ksg_mutual_information,
    mutual_information,
    parts_mutual_information,
)


def correlated(rho: float, dim: int, n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, float]:
    """x, y with corr(x_i, y_i) = rho per dimension pair: I = -dim/2 log(1 - rho^2)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim))
    y = rho * x + math.sqrt(1 - rho**2) * rng.standard_normal((n, dim))
    return x, y, -0.5 * dim * math.log(1 - rho**2)


@pytest.mark.parametrize(("rho", "dim", "tol"), [(0.8, 1, 0.05), (0.6, 2, 0.06), (0.9, 2, 0.1)])
def test_ksg_matches_gaussian_mi(rho: float, dim: int, tol: float) -> None:
    x, y, true = correlated(rho, dim)
    assert ksg_mutual_information(x, y, k=3) == pytest.approx(true, abs=tol)


def test_ksg_near_zero_for_independent_variables() -> None:
    x, y, _ = correlated(0.0, 2)
    assert ksg_mutual_information(x, y) < 0.05


@pytest.mark.parametrize(("rho", "dim"), [(0.6, 4), (0.9, 8)])
def test_gaussian_estimator_matches_closed_form(rho: float, dim: int) -> None:
    x, y, true = correlated(rho, dim, n=4000)
    assert gaussian_mutual_information(x, y) == pytest.approx(true, rel=0.05)


def test_mi_is_invariant_to_invertible_maps_and_grows_with_rho() -> None:
    rng = np.random.default_rng(1)
    mixing = rng.standard_normal((2, 2)) + 2 * np.eye(2)
    x, y, true = correlated(0.8, 2)
    assert mutual_information(x @ mixing, 3 * y - 1, max_dim=None) == pytest.approx(true, abs=0.1)
    values = [mutual_information(*correlated(r, 2)[:2]) for r in (0.2, 0.5, 0.8, 0.95)]
    assert values == sorted(values)


def test_pca_projection_recovers_mi_of_a_low_dim_latent_in_wide_features() -> None:
    # 2-d latents embedded in 256-d features (tiny noise): the PCA-2 projection keeps all the MI.
    rng = np.random.default_rng(2)
    s, t, true = correlated(0.8, 2)
    x = s @ rng.standard_normal((2, 256)) + 1e-3 * rng.standard_normal((2000, 256))
    y = t @ rng.standard_normal((2, 256)) + 1e-3 * rng.standard_normal((2000, 256))
    assert mutual_information(torch.tensor(x), torch.tensor(y), max_dim=2) == pytest.approx(true, abs=0.08)
    assert mutual_information(x, y, method="gaussian", max_dim=2) == pytest.approx(true, abs=0.05)


def gmf_like_parts(n: int = 1500) -> dict[str, torch.Tensor]:
    """inv/* share a latent s; spec/audio is built from inv/video's latent, spec/video is independent."""
    g = torch.Generator().manual_seed(0)
    s = torch.randn(n, 3, generator=g)
    u = torch.randn(n, 3, generator=g)
    noise = lambda: 0.3 * torch.randn(n, 3, generator=g)  # noqa: E731
    return {
        "inv/audio": s + noise(),
        "inv/video": u + noise(),  # z/audio = (inv/video, spec/audio): strongly dependent
        "spec/audio": u + noise(),
        "spec/video": torch.randn(n, 3, generator=g),  # z/video = (inv/audio, spec/video): independent
        "input/audio": torch.cat([s, u], 1) + noise().repeat(1, 2),
        "input/video": torch.cat([s, u], 1) + noise().repeat(1, 2),
    }


GMF = ("inv", "spec")  # GMF's Fuser.exchanged_parts


def test_parts_mi_pairs_inv_of_the_next_modality_with_spec() -> None:
    mi = parts_mutual_information(gmf_like_parts(), exchanged=GMF)
    assert set(mi) == {"z/audio", "z/video", "own/audio", "own/video", "exchanged", "unexchanged",
                       "input/audio;video", "inputs"}
    assert mi["z/audio"] > 0.8 and mi["z/video"] < 0.1  # cyclic: z_audio holds inv_video
    assert mi["exchanged"] == pytest.approx((mi["z/audio"] + mi["z/video"]) / 2)
    assert mi["inputs"] > mi["exchanged"]
    # the pairing is the fuser's declaration, not its part names: undeclared, inv and spec are plain kinds
    plain = parts_mutual_information(gmf_like_parts())
    assert set(plain) == {"inv/audio;video", "inv", "spec/audio;video", "spec", "input/audio;video", "inputs"}
    assert plain["inv/audio;video"] < 0.1 and plain["spec/audio;video"] < 0.1


def test_parts_mi_for_other_fusers_and_empty_parts() -> None:
    g = torch.Generator().manual_seed(0)
    shared = torch.randn(800, 4, 6, generator=g)  # B x tokens x D: mean-pooled over tokens
    parts = {"tokens/audio": shared + 0.1 * torch.randn(800, 4, 6, generator=g), "tokens/video": shared}
    mi = parts_mutual_information(parts)
    assert set(mi) == {"tokens/audio;video", "tokens"} and mi["tokens"] > 1.0
    assert parts_mutual_information({}) == {}
    # DrFuse-style spec/shared without inv: plain per-kind pairs; a G-wrapper's back-end parts keep their kind
    drfuse = parts_mutual_information({"spec/audio": shared[:, 0], "spec/video": shared[:, 0], "attention": shared})
    assert set(drfuse) == {"spec/audio;video", "spec"}
    nested = parts_mutual_information({"backend/token/audio": shared, "backend/token/video": shared})
    assert set(nested) == {"backend/token/audio;video", "backend/token"}
    assert parts_mutual_information({"fused": torch.randn(50, 3)}) == {}


def test_collector_accumulates_batches_and_caps_samples() -> None:
    parts = gmf_like_parts(1500)
    collector = PartsCollector(max_samples=1000)
    inputs = {"audio": parts.pop("input/audio"), "video": parts.pop("input/video")}
    for start in range(0, 1500, 64):
        batch = {k: v[start : start + 64] for k, v in parts.items()}
        batch.update({"attention": torch.ones(64, 2), "gate/audio": torch.ones(1, 3), "gate/video": torch.ones(1, 3)})
        collector.update(batch, {k: v[start : start + 64] for k, v in inputs.items()})
    assert collector._rows == 1000
    mi = collector.compute(exchanged=GMF)
    assert mi["inputs"] > mi["exchanged"] and "z/audio" in mi
    assert not any(k.startswith("gate") for k in mi)  # one row per batch, not per sample: dropped
    assert PartsCollector().compute() == {}


def test_collector_leaves_out_non_finite_parts():
    import torch

    from gmf_repro.evaluation.mutual_info import PartsCollector

    collector = PartsCollector(max_samples=200)
    g = torch.Generator().manual_seed(0)
    a = torch.randn(200, 4, generator=g)
    bad = torch.full((200, 4), float("nan"))
    collector.update({"inv/audio": bad, "spec/audio": bad, "inv/video": bad, "spec/video": bad},
                     {"audio": a, "video": a + 0.1 * torch.randn(200, 4, generator=g)})
    out = collector.compute(exchanged=GMF)
    assert set(out) == {"input/audio;video", "inputs"} and out["inputs"] > 1.0


def test_bootstrap_interval_covers_the_truth_and_shrinks_with_samples() -> None:
    from gmf_repro.evaluation.mutual_info import bootstrap_intervals, ksg_terms

    widths = []
    for n in (500, 2000):
        x, y, true = correlated(0.6, 2, n=n, seed=1)
        terms = ksg_terms(x, y)
        assert terms.mean() == pytest.approx(ksg_mutual_information(x, y))  # the estimate is the terms' mean
        lo, hi = bootstrap_intervals({"xy": terms}, resamples=500)["xy"]
        assert lo < terms.mean() < hi and lo < true < hi
        widths.append(hi - lo)
    assert widths[1] == pytest.approx(widths[0] / 2, rel=0.35)  # ~1/sqrt(n)


def test_parts_mi_bootstrap_gives_paired_intervals() -> None:
    mi = parts_mutual_information(gmf_like_parts(), bootstrap=300, exchanged=GMF)
    ci = mi.pop("ci95")
    assert mi == parts_mutual_information(gmf_like_parts(), exchanged=GMF)  # the point estimates do not change
    assert set(ci) == {*mi, "inputs-exchanged", "unexchanged-exchanged"}
    for key, (lo, hi) in ci.items():
        if "-" not in key:
            assert lo <= mi[key] <= hi, key
    lo, hi = ci["inputs-exchanged"]
    assert 0 < lo <= mi["inputs"] - mi["exchanged"] <= hi
    assert "ci95" not in parts_mutual_information(gmf_like_parts(), bootstrap=300, method="gaussian", exchanged=GMF)

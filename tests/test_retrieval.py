"""Retrieval (Table 3): mAP@k by hand, fusers and their sizes, the ActivityNet pickles, and run(cfg) end to end."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchmetrics.functional.retrieval import retrieval_average_precision

from gmf_repro.complexity import measure
from gmf_repro.config import compose
from gmf_repro.data import activitynet
from gmf_repro.data.activitynet import ActivityNetDataModule
from gmf_repro.errors import UserError
from gmf_repro.evaluation.retrieval_metrics import cosine_scores, map_at_k, reference_cumulative_map
from gmf_repro.models.extractors import Identity
from gmf_repro.models.fusion.apivr import APIVR
from gmf_repro.models.fusion.clip import CLIP
from gmf_repro.models.fusion.gmf_retrieval import GMFRetrieval
from gmf_repro.models.fusion.map_ivr import MAPIVR
from gmf_repro.models.fusion.meter import METER
from gmf_repro.models.fusion.perceiver import Perceiver
from gmf_repro.models.fusion.retrieval import as_retrieval_fuser
from gmf_repro.run import run
from gmf_repro.tasks.retrieval import RetrievalTask, hardest_negative_triplet

RETRIEVAL = ["data=synth_retrieval", "task=retrieval", "eval.conditions=[IV]", "eval.latency_repeats=2"]


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# -- metrics ---------------------------------------------------------------------------------------
def test_map_at_k_matches_hand_computed_values():
    # scores decrease along the gallery, so the ranking is the column order
    scores = torch.tensor([[5.0, 4.0, 3.0, 2.0, 1.0], [5.0, 4.0, 3.0, 2.0, 1.0]])
    relevant = torch.tensor([[1, 0, 1, 0, 1], [0, 0, 0, 1, 0]], dtype=torch.bool)
    # query 1: AP@3 = (1/1 + 2/3) / 2,  AP@5 = (1/1 + 2/3 + 3/5) / 3;  query 2: AP@3 = 0,  AP@5 = (1/4) / 1
    ap1_3, ap1_5, ap2_3, ap2_5 = (1 + 2 / 3) / 2, (1 + 2 / 3 + 3 / 5) / 3, 0.0, 0.25
    got = map_at_k(scores, relevant, ks=(3, 5))
    assert got[3] == pytest.approx((ap1_3 + ap2_3) / 2)
    assert got[5] == pytest.approx((ap1_5 + ap2_5) / 2)
    # AP-IVR's printed values keep appending AP values across k: "@5" averages the @3 and @5 lists
    ref = reference_cumulative_map(scores, relevant, ks=(3, 5))
    assert ref[3] == pytest.approx(got[3])
    assert ref[5] == pytest.approx((ap1_3 + ap2_3 + ap1_5 + ap2_5) / 4)


def test_ranking_follows_scores_not_column_order():
    scores = torch.tensor([[0.1, 0.9, -0.5, 0.3]])
    relevant = torch.tensor([[0, 1, 1, 0]], dtype=torch.bool)
    # ranking: col1 (rel), col3, col0, col2 (rel) -> AP@4 = (1/1 + 2/4) / 2; a negative score still counts
    assert map_at_k(scores, relevant, ks=(4,))[4] == pytest.approx(0.75)


def test_agrees_with_torchmetrics_on_positive_scores():
    g = torch.Generator().manual_seed(0)
    scores = torch.rand(20, 60, generator=g) + 0.01
    relevant = torch.rand(20, 60, generator=g) < 0.2
    for k in (10, 20, 50):
        ours = map_at_k(scores, relevant, ks=(k,))[k]
        per_query = [retrieval_average_precision(s, r, top_k=k) for s, r in zip(scores, relevant, strict=True)]
        theirs = torch.stack(per_query).mean()
        assert ours == pytest.approx(float(theirs), abs=1e-6)


# -- fusers ---------------------------------------------------------------------------------------
SMALL = {"image": 16, "video": 48}


@pytest.mark.parametrize(
    "make",
    [
        lambda d: GMFRetrieval(d),
        lambda d: APIVR(d, num_classes=5),
        lambda d: MAPIVR(d, hidden=32, appearance_dim=16, motion_dim=16),
        lambda d: METER(d, width=32, heads=4, ffn=64, layers=1),
        lambda d: as_retrieval_fuser(Perceiver(d, depth=1, num_latents=8, latent_dim=32), embed_dim=24),
    ],
    ids=["gmf", "apivr", "map_ivr", "meter", "perceiver"],
)
def test_retrieval_fuser_seam(make):
    torch.manual_seed(0)
    fuser = make(SMALL)
    feats = {m: torch.randn(6, d) for m, d in SMALL.items()}
    emb = fuser.embed(feats)
    assert set(emb) == {"image", "video"} and emb["image"].shape == emb["video"].shape == (6, fuser.embed_dim)
    # each modality is embedded from itself alone: changing the video leaves the image embedding unchanged
    fuser.eval()
    other = {"image": feats["image"], "video": torch.randn(6, SMALL["video"])}
    assert torch.allclose(fuser.embed(feats)["image"], fuser.embed(other)["image"], atol=1e-6)
    fuser.train()
    out = fuser(feats)
    assert out.embeddings["image"].shape == out.embeddings["video"].shape == (6, fuser.embed_dim)
    task = RetrievalTask({}, fuser, num_classes=5, optimizer=None)
    batch = {**feats, "label": torch.tensor([0, 1, 2, 0, 1, 3])}
    loss = task.training_step(batch, 0)
    loss.backward()
    assert torch.isfinite(loss)


def test_clip_has_no_parameters_and_needs_one_width():
    assert n_params(CLIP({"image": 64, "video": 64})) == 0
    with pytest.raises(ValueError, match="LinearMap"):
        CLIP({"image": 128, "video": 4096})


def test_full_size_parameter_counts_on_meta_device():
    with torch.device("meta"):
        assert n_params(GMFRetrieval({"image": 128, "video": 128})) == 329_472
        assert n_params(GMFRetrieval({"image": 128, "video": 4096})) == 119_202_816
        sizes = {  # ours vs the paper's Table 3 column (docs/retrieval.md), each within +-20%
            "meter": (n_params(METER({"image": 4096, "video": 4096})), 62.96e6),
            "apivr": (n_params(APIVR({"image": 128, "video": 4096}, num_classes=200)), 2.19e6),
            "map_ivr_128": (n_params(MAPIVR({"image": 128, "video": 128})), 3.81e6),
            "map_ivr_128_4096": (n_params(MAPIVR({"image": 128, "video": 4096})), 11.94e6),
            "perceiver_128": (n_params(Perceiver({"image": 128, "video": 128})), 44.54e6),
        }
    for name, (ours, paper) in sizes.items():
        assert abs(ours / paper - 1) < 0.2, (name, ours, paper)


# -- data ---------------------------------------------------------------------------------------
def write_pickles(root, n_train=40, n_test=30, t=4, dv=32, di=8, classes=3, seed=0):
    """Small files in AP-IVR's layout: Python-2-style pickles of numpy arrays, labels from 1."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test)):
        labels = rng.integers(1, classes + 1, size=n)
        proto = rng.normal(size=(classes + 1, dv))
        video = (proto[labels][:, None, :] + rng.normal(size=(n, t, dv))).astype(np.float32)
        image = (proto[labels][:, :di] + 0.5 * rng.normal(size=(n, di))).astype(np.float32)
        for kind, obj in (("v", video), ("i", image), ("label", labels)):
            with open(root / f"{split}_{kind}.pkl", "wb") as f:
                pickle.dump(obj, f, protocol=2)
    return root


def test_activitynet_pickles_are_read_pooled_and_scaled(tmp_path):
    root = write_pickles(tmp_path / "anet")
    dm = ActivityNetDataModule(str(root), image_dim=8, video_dim=32, num_classes=3, proposals=4)
    assert dm.modalities == ["image", "video"] and dm.input_shapes == {"image": (8,), "video": (32,)}
    dm.setup()
    raw_v = pickle.load(open(root / "test_v.pkl", "rb"), encoding="latin1")
    raw_tr = pickle.load(open(root / "train_v.pkl", "rb"), encoding="latin1")
    expected = (raw_v.mean(1) - raw_tr.mean()) / (raw_tr.max() - raw_tr.min())
    batch = dm.on_after_batch_transfer(dm.test_set[list(range(30))], 0)  # the scaling runs on the device
    assert torch.allclose(batch["video"], torch.from_numpy(expected).float(), atol=1e-5)
    labels = pickle.load(open(root / "test_label.pkl", "rb"), encoding="latin1")
    assert torch.equal(batch["label"], torch.from_numpy(labels - 1))
    assert batch["image"].shape == (30, 8)


def test_missing_root_and_missing_file_fail_with_one_clear_line(tmp_path):
    with pytest.raises(UserError, match=r"folder .*nowhere does not exist; get the ActivityNet feature pickles"):
        ActivityNetDataModule(str(tmp_path / "nowhere"))
    root = write_pickles(tmp_path / "anet")
    (root / "test_i.pkl").unlink()
    with pytest.raises(UserError, match=r"file missing: .*test_i\.pkl"):
        ActivityNetDataModule(str(root), image_dim=8, video_dim=32, num_classes=3, proposals=4)


def test_wrong_dims_name_the_setting(tmp_path):
    root = write_pickles(tmp_path / "anet")
    with pytest.raises(UserError, match="set data.image_dim"):  # when the datamodule is built, before any training
        ActivityNetDataModule(str(root), image_dim=128, video_dim=32, num_classes=3, proposals=4)
    dm = ActivityNetDataModule(str(root), image_dim=8, video_dim=64, num_classes=3, proposals=4)
    with pytest.raises(UserError, match="set data.video_dim"):  # a video pickle's shape is known once it is read
        dm.setup()


# -- end to end through run(cfg) ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def untrained_clip(tmp_path_factory):
    from conftest import make_cfg

    return run(make_cfg(tmp_path_factory.mktemp("clip"), [*RETRIEVAL, "fuser=clip", "trainer.max_epochs=1"]))


def test_tiny_fit_beats_untrained_clip(untrained_clip, cfg_factory):
    trained = run(cfg_factory(*RETRIEVAL, "fuser=retrieval/gmf", name="gmf"))
    base, ours = untrained_clip["metrics"]["IV"], trained["metrics"]["IV"]
    assert set(ours) >= {"map@10", "map@20", "map@50", "map@100", "map_apivr@100"}
    assert ours["map@10"] > base["map@10"] + 0.15, (ours, base)
    assert ours["map@100"] > base["map@100"] + 0.1, (ours, base)
    assert trained["complexity"]["params"] == n_params(GMFRetrieval({"image": 64, "video": 64}))
    assert untrained_clip["complexity"]["params"] == 0


def test_gmf_unequal_dims_reduced(cfg_factory):
    """The 128-4096 setting at reduced size: image 16, video 256 (GMF 128/4096 itself: the meta-device count)."""
    res = run(cfg_factory(*RETRIEVAL, "fuser=retrieval/gmf", "data.dims=[16,256]", "trainer.max_epochs=2", name="u"))
    assert res["metrics"]["IV"]["map@10"] > 0.2
    assert res["complexity"]["params"] == n_params(GMFRetrieval({"image": 16, "video": 256}))


def test_activitynet_experiment_on_small_pickles(tmp_path):
    root = write_pickles(tmp_path / "anet", n_train=64, n_test=40)
    res = run(_anet_cfg(tmp_path, root))
    assert res["data"] == "activitynet" and set(res["metrics"]) == {"IV"}
    assert 0.0 <= res["metrics"]["IV"]["map@10"] <= 1.0
    assert res["complexity"]["params"] == n_params(GMFRetrieval({"image": 8, "video": 8}))


def _anet_cfg(tmp_path, root):
    from conftest import make_cfg

    return make_cfg(tmp_path / "anet_run", [
        "logger=none", "progress=none", "print_config=false", "trainer=cpu", "trainer.max_epochs=2",
        "experiment=activitynet_128", f"data.root={root}", "data.image_dim=8", "data.video_dim=32",
        "data.num_classes=3", "data.proposals=4", "extractors.video.out_dim=8", "eval.latency_repeats=2",
    ], tiny=False)


def test_table3_sweeps_every_row():
    cfg = compose(["experiment=table3"], return_hydra_config=True)
    rows = str(cfg.hydra.sweeper.params["+table3_row"]).split(",")
    assert len(rows) == 8 and str(cfg.hydra.mode) == "RunMode.MULTIRUN"
    for row in rows:
        c = compose(["experiment=table3", f"+table3_row={row}"])
        assert c.labels.data == "activitynet" and c.labels.task == "retrieval" and list(c.eval.conditions) == ["IV"]
        setting = c.tags[1]
        assert row.endswith(setting.replace("-", "_"))
        mapped = {m: e.out_dim for m, e in c.extractors.items() if "out_dim" in e}
        assert mapped == {"128": {"video": 128}, "4096": {"image": 4096}, "128-4096": {}}[setting]
        # AP-IVR pools the 64 proposals itself and gets the bag; every other row gets their mean
        bag = row == "apivr_128_4096"
        assert c.data.pool == ("none" if bag else "mean"), row
        assert (c.extractors.get("video", {}).get("_target_") == "gmf_repro.models.bag.ProposalBag") == bag, row
        # the report's place: Table 3, row <fuser>@<setting>
        assert (c.report.table, c.report.row) == ("table3", f"{c.labels.fuser}@{setting}"), row


def test_pooled_video_cache_is_reused(tmp_path, monkeypatch):
    """The unchanged video file is not read again (a replaced one is: tests/test_data_files.py)."""
    root = write_pickles(tmp_path / "anet")
    cache = tmp_path / "cache"
    kw = {"image_dim": 8, "video_dim": 32, "num_classes": 3, "proposals": 4, "cache_dir": str(cache)}
    first = ActivityNetDataModule(str(root), **kw)
    first.setup()
    assert sorted(p.name for p in cache.iterdir()) == ["test_v_mean.npz", "train_v_mean.npz"]
    read = activitynet._load_pickle

    def no_video(path):
        assert not path.name.endswith("_v.pkl"), f"{path} read again"
        return read(path)

    monkeypatch.setattr(activitynet, "_load_pickle", no_video)
    second = ActivityNetDataModule(str(root), **kw)
    second.setup()
    assert torch.equal(first.train_set.tensors["video"], second.train_set.tensors["video"])


def test_pair_score_reranks_only_the_top_candidates():
    """A cross-attention fuser re-orders each query's cosine top-k; the rest stay below, in cosine order."""
    fuser = METER({"image": 2, "video": 2}, width=8, heads=2, ffn=16, layers=1)
    angles = torch.deg2rad(torch.tensor([0.0, 10.0, 20.0, 30.0, 80.0, 90.0]))
    g = torch.stack([angles.cos(), angles.sin()], dim=1)  # cosine to the query ranks items 0, 1, ..., 5
    q = torch.tensor([[1.0, 0.0]])
    fuser.pair_score = lambda a, b: torch.isclose(b, g[3]).all(-1).float()  # prefers item 3, 4th by cosine
    task = RetrievalTask({}, fuser, num_classes=2, optimizer=None, rerank_k=4)
    scores = task.rank_scores(q, g)[0]
    order = scores.argsort(descending=True).tolist()
    assert order[0] == 3 and set(order[:4]) == {0, 1, 2, 3} and order[4:] == [4, 5]


# -- proposal bags and AP-IVR as released (issue 10, item 7) ----------------------------------------
def test_pool_none_keeps_the_proposal_bags(tmp_path):
    root = write_pickles(tmp_path / "anet", t=4)
    dm = ActivityNetDataModule(str(root), image_dim=8, video_dim=32, num_classes=3, proposals=4, pool="none")
    assert dm.input_shapes == {"image": (8,), "video": (4, 32)}
    dm.setup()
    raw_v = pickle.load(open(root / "test_v.pkl", "rb"), encoding="latin1")
    raw_tr = pickle.load(open(root / "train_v.pkl", "rb"), encoding="latin1")
    batch = next(iter(dm.train_dataloader()))
    assert batch["video"].shape == (40, 4, 32) and batch["image"].shape == (40, 8)
    expected = (raw_v - raw_tr.mean()) / (raw_tr.max() - raw_tr.min())  # same scaling as the pooled input
    # the set holds the raw bag; the scaling runs on the device, after a missing-modality condition
    assert torch.equal(dm.test_set.tensors["video"], torch.from_numpy(raw_v).float())
    scaled = dm.on_after_batch_transfer({"video": dm.test_set.tensors["video"]})["video"]
    assert torch.allclose(scaled, torch.from_numpy(expected).float(), atol=1e-5)
    with pytest.raises(UserError, match="set data.proposals"):
        ActivityNetDataModule(str(root), image_dim=8, video_dim=32, num_classes=3, proposals=64, pool="none").setup()


def test_apivr_attention_pools_the_bag_and_is_permutation_invariant():
    torch.manual_seed(0)
    fuser = APIVR({"image": 16, "video": 48}, num_classes=5).eval()
    bag = torch.randn(3, 7, 48)
    emb, proposals, weights = fuser.video(bag)
    assert emb.shape == (3, 64) and proposals.shape == (3, 7, 64) and weights.shape == (3, 7)
    assert torch.allclose(weights.sum(1), torch.ones(3), atol=1e-6) and (weights > 0).all()
    assert weights.std(1).min() > 0  # learned weights, not the mean
    # the order of the proposals matters only through the weights: a permuted bag gives the permuted
    # weights and the same embedding, which is the weighted sum of the value projections
    perm = torch.randperm(7)
    emb_p, _, weights_p = fuser.video(bag[:, perm])
    assert torch.allclose(weights_p, weights[:, perm], atol=1e-6) and torch.allclose(emb_p, emb, atol=1e-5)
    values = fuser.pool.value(fuser.pool.hidden(proposals))
    assert torch.allclose(emb, (weights.unsqueeze(-1) * values).sum(1), atol=1e-5)
    # a pooled vector [B, D] is a bag of one: weight 1, embedding = its value projection
    one, _, w1 = fuser.video(bag[:, 0])
    assert torch.equal(w1, torch.ones(3, 1)) and torch.allclose(one, fuser.video(bag[:, :1])[0])


def test_apivr_parameter_count_at_128_4096_as_documented():
    fuser = APIVR({"image": 128, "video": 4096}, num_classes=200)
    mlps = n_params(fuser.proposal_embed) + n_params(fuser.image_embed)
    assert mlps == 2_187_728  # the paper's 2.19M: the two embedding MLPs
    assert n_params(fuser.pool) == 26_065
    fuser.video(torch.randn(1, 64, 4096))  # the run feeds 64 proposals: the FLOPs are those of the bag
    got = measure(fuser, latency=False)
    assert got["params"] == 2_213_793 and got["training_only_params"] == 13_000 + 2_146 + 8_320
    assert got["flops"] == 279_944_832  # 64 proposals through the MLP (one pooled vector: 4,425,040)
    assert measure(GMFRetrieval({"image": 128, "video": 128}), latency=False).keys() == {"params", "flops"}


def test_apivr_discriminator_trains_alone_as_released_or_reversed_when_adversarial():
    torch.manual_seed(0)
    e_i, e_v = torch.randn(6, 64, requires_grad=True), torch.randn(6, 64, requires_grad=True)
    released = APIVR({"image": 16, "video": 48}, num_classes=5)
    released.domain_loss(e_i, e_v).backward()
    # the release minimises the domain loss over the discriminator's variables only: no push on the embeddings
    assert e_i.grad is None and e_v.grad is None
    assert released.domain_classifier[0].weight.grad.abs().sum() > 0
    adversarial = APIVR({"image": 16, "video": 48}, num_classes=5, adversarial=True, reverse_scale=0.5)
    adversarial.domain_classifier.load_state_dict(released.domain_classifier.state_dict())
    adversarial.domain_loss(e_i, e_v).backward()
    # reference: the same loss without the reversal layer; the embeddings get -0.5 x its gradient
    ref_i, ref_v = e_i.detach().clone().requires_grad_(), e_v.detach().clone().requires_grad_()
    logits = released.domain_classifier(torch.cat([ref_v, ref_i]))
    (F.cross_entropy(logits[:6], torch.ones(6, dtype=torch.long))
     + F.cross_entropy(logits[6:], torch.zeros(6, dtype=torch.long))).backward()
    assert torch.allclose(e_i.grad, -0.5 * ref_i.grad, atol=1e-6) and torch.allclose(e_v.grad, -0.5 * ref_v.grad)
    assert e_v.grad.abs().sum() > 0


def test_apivr_training_step_as_released():
    torch.manual_seed(0)
    fuser = APIVR({"image": 16, "video": 48}, num_classes=5, embed_dim=8, video_hidden=(24, 12),
                  image_hidden=(12, 10), attention_hidden=10)
    task = RetrievalTask({}, fuser, num_classes=5, optimizer=None)
    batch = {"image": torch.randn(6, 16), "video": torch.randn(6, 8, 48), "label": torch.tensor([0, 1, 2, 0, 1, 3])}
    out = fuser(task.features(batch))
    assert set(out.logits) == {"image", "video"} and out.logit_weights == {"video": 10.0}
    assert out.parts["attention/video"].shape == (6, 8) and {"loss/domain", "loss/transpose"} <= set(out.parts)
    # the transpose target is the bag's projector X (X^T X)^-1 X^T: the identity for a full-rank 8 x 8 bag
    bag = fuser.proposal_embed(batch["video"])
    expected = F.mse_loss(fuser.transpose(bag), torch.eye(8).expand(6, 8, 8))
    assert torch.allclose(fuser.transpose_loss(bag), expected, atol=1e-4)
    task.training_step(batch, 0).backward()
    # the release never trains the shared label classifier: it keeps its random initialisation
    assert not any(p.requires_grad for p in fuser.label_classifier.parameters())
    assert fuser.pool.score.weight.grad.abs().sum() > 0 and fuser.transpose[0].weight.grad.abs().sum() > 0
    with pytest.raises(UserError, match="needs P = embed_dim"):
        fuser.transpose_loss(fuser.proposal_embed(torch.randn(2, 5, 48)))


class _LogitsInParts(CLIP):
    """A fuser that hands class logits to the task either in ``parts`` (ignored) or in the typed field."""

    def __init__(self, dims, typed: bool) -> None:
        super().__init__(dims)
        self.head, self.typed = torch.nn.Linear(4, 3), typed

    def add_training_terms(self, feats, emb, out) -> None:
        logits = self.head(emb["image"])
        if self.typed:
            out.logits, out.logit_weights = {"image": logits}, {"image": 2.0}
        else:
            out.parts["logits/image"], out.parts["logit_weight/image"] = logits, torch.tensor(2.0)


def test_retrieval_task_reads_typed_fields_not_parts():
    torch.manual_seed(0)
    batch = {"image": torch.randn(6, 4, requires_grad=True), "video": torch.randn(6, 4),
             "label": torch.tensor([0, 1, 2, 0, 1, 2])}
    rank = hardest_negative_triplet(cosine_scores(batch["image"], batch["video"]), batch["label"], 0.2)
    in_parts = _LogitsInParts({"image": 4, "video": 4}, typed=False)
    assert torch.allclose(RetrievalTask({}, in_parts, num_classes=3, optimizer=None).training_step(batch, 0), rank)
    typed = _LogitsInParts({"image": 4, "video": 4}, typed=True)
    typed.head.load_state_dict(in_parts.head.state_dict())
    ce = F.cross_entropy(typed.head(batch["image"]), batch["label"])
    loss = RetrievalTask({}, typed, num_classes=3, optimizer=None).training_step(batch, 0)
    assert torch.allclose(loss, rank + 2.0 * ce)


def test_a_bag_never_reaches_a_one_vector_fuser_flattened():
    batch = {"image": torch.randn(4, 8), "video": torch.randn(4, 5, 8), "label": torch.tensor([0, 1, 0, 1])}
    with pytest.raises(UserError, match="set data.pool=mean"):
        RetrievalTask({}, GMFRetrieval({"image": 8, "video": 8}), num_classes=2, optimizer=None).training_step(batch, 0)
    flat = {"video": Identity((5, 8))}
    with pytest.raises(UserError, match="extractors.video=proposal_bag"):
        task = RetrievalTask(flat, APIVR({"image": 8, "video": 40}, num_classes=2), num_classes=2, optimizer=None)
        task.features(batch)


def test_apivr_row_trains_on_proposal_bags_end_to_end(tmp_path):
    from conftest import make_cfg

    root = write_pickles(tmp_path / "anet", n_train=64, n_test=40, t=8)
    cfg = make_cfg(tmp_path / "apivr_run", [
        "logger=none", "progress=none", "print_config=false", "trainer=cpu", "trainer.max_epochs=2",
        "experiment=activitynet_128_4096", "fuser=apivr", "proposals=activitynet_apivr", f"data.root={root}",
        "data.image_dim=8",
        "data.video_dim=32", "data.num_classes=3", "data.proposals=8", "fuser.embed_dim=8",
        "fuser.video_hidden=[16,12]", "fuser.image_hidden=[8,8]", "fuser.attention_hidden=10",
        "eval.latency_repeats=2",
    ], tiny=False)
    assert cfg.data.pool == "none" and cfg.extractors.video._target_ == "gmf_repro.models.bag.ProposalBag"
    res = run(cfg)
    assert res["dims"] == {"image": 8, "video": 32} and 0.0 <= res["metrics"]["IV"]["map@10"] <= 1.0
    f = APIVR({"image": 8, "video": 32}, num_classes=3, embed_dim=8, video_hidden=(16, 12), image_hidden=(8, 8),
              attention_hidden=10)
    assert res["complexity"]["params"] == n_params(f) - 3 * 8 - 3 - (8 * 32 + 32 + 32 * 2 + 2) - 2 * (8 * 8 + 8)
    assert res["complexity"]["training_only_params"] == (8 * 3 + 3) + (8 * 32 + 32 + 32 * 2 + 2) + 2 * (8 * 8 + 8)
    f.video(torch.randn(1, 8, 32))
    assert res["complexity"]["flops"] == measure(f, latency=False)["flops"]  # FLOPs of a bag of 8


def test_a_collapsed_gallery_is_reported_not_ranked_silently():
    task = RetrievalTask({}, CLIP({"image": 4, "video": 4}), num_classes=2, optimizer=None)
    task.on_test_epoch_start()
    task.test_step({"image": torch.randn(6, 4), "video": torch.ones(6, 4), "label": torch.tensor([0, 1] * 3)}, 0)
    with pytest.warns(UserWarning, match="every gallery embedding is the same"):
        task.on_test_epoch_end()


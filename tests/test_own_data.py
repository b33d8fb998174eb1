"""Your own data: feature files (.npz, .pt, .npy folders, per-split sets) and a CSV + clips folder, run with
GMF, concat and MBT under every missing-modality condition; bad files fail with one line and exit code 2."""
from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_cfg

from gmf_repro.errors import UserError
from gmf_repro.evaluation.conditions import apply_condition, resolve_conditions
from gmf_repro.fixtures import COLOURS, TONES_HZ, write_clip
from gmf_repro.run import run
from gmf_repro.utils import build

DIMS = {"text": 48, "image": 32, "audio": 16}
LETTERS = "data.modalities={text:T,image:I,audio:A}"
FAST = ["threads=1", "logger=none", "progress=none", "print_config=false", "trainer=cpu", "trainer.max_epochs=3",
        "eval.latency_repeats=2", "eval.mutual_information=false", "eval.complexity=false"]
EVERY = ["TIA", "TI", "TA", "IA", "T", "I", "A"]
FUSERS = ["concat", "demo/gmf", "demo/mbt"]


def make_arrays(n: int = 240, k: int = 4, seed: int = 0) -> dict[str, np.ndarray]:
    """Each modality sees the class through its own prototypes, on its own scale and offset, plus noise."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    out = {}
    for j, (m, d) in enumerate(DIMS.items()):
        proto = rng.normal(size=(k, d)) * np.sqrt(48 / d)  # the same class separation at every dim
        out[m] = ((proto[y] + rng.normal(size=(n, d))) * (1 + 4 * j) + 10 * j).astype(np.float32)
    out["label"] = y
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("features")
    arrays = make_arrays()
    np.savez(root / "three.npz", **arrays)
    torch.save({k: torch.from_numpy(v) for k, v in arrays.items()}, root / "three.pt")
    return {"npz": root / "three.npz", "pt": root / "three.pt"}


def cfg(out: Path, *overrides: str):
    return make_cfg(out, [*FAST, *overrides], tiny=False)


@pytest.mark.parametrize("fmt", ["npz", "pt"])
@pytest.mark.parametrize("fuser", FUSERS)
def test_feature_files_every_fuser_every_condition(files, tmp_path, fmt, fuser):
    res = run(cfg(tmp_path, "data=features", f"data.path={files[fmt]}", LETTERS, f"fuser={fuser}"))
    assert res["dims"] == DIMS and list(res["metrics"]) == EVERY  # eval.conditions=auto: every subset
    acc = {c: m["acc"] for c, m in res["metrics"].items()}
    # chance: 0.25 (48 test rows); one modality alone also carries the others' standardised zeros
    assert acc["TIA"] > 0.9 and min(acc.values()) > 0.35, acc


def test_conditions_take_the_letters_from_the_data(files):
    dm = build(cfg(Path("/tmp"), "data=features", f"data.path={files['npz']}", LETTERS).data)
    assert dm.letters == {"text": "T", "image": "I", "audio": "A"} and dm.num_classes == 4
    assert resolve_conditions(["ITA", "IT", "A"], dm.modalities, dm.letters) == ["ITA", "IT", "A"]
    batch = next(iter(dm.test_dataloader()))
    kept = apply_condition(batch, "IT", dm.modalities, letters=dm.letters)
    assert kept["audio"].abs().sum() == 0 and torch.equal(kept["text"], batch["text"])
    # zeroed in raw space, then standardised: the absent modality reads (0 - mean) / std
    mean, std = dm.scaler.stats["audio"]
    assert torch.allclose(dm.on_after_batch_transfer(kept)["audio"][0], -mean / std)
    with pytest.raises(UserError, match="use letters of 'TIA' .T=text, I=image, A=audio."):
        resolve_conditions(["AV"], dm.modalities, dm.letters)
    assert resolve_conditions("auto", ["audio", "video"], {"audio": "A", "video": "V"}) == ["AV", "A", "V"]


def test_npy_folder_and_per_split_sets(tmp_path):
    arrays = make_arrays(n=100, k=5)
    folder = tmp_path / "npy"
    folder.mkdir()
    for k, v in arrays.items():
        np.save(folder / f"{k}.npy", v)
    dm = build(cfg(tmp_path, "data=features", f"data.path={folder}", "data.val_fraction=0.1").data)
    assert dm.sizes == {"train": 70, "val": 10, "test": 20} and dm.has_val
    assert dm.letters == {"audio": "A", "image": "I", "text": "T"}  # a list or null: A/V/I/T or first letter
    split = tmp_path / "split"
    split.mkdir()
    np.savez(split / "train.npz", **{k: v[:80] for k, v in arrays.items()})
    np.savez(split / "test.npz", **{k: v[80:] for k, v in arrays.items()})
    dm = build(cfg(tmp_path, "data=features", f"data.path={split}", "data.modalities=[text,audio]").data)
    assert dm.sizes == {"train": 80, "test": 20} and not dm.has_val
    assert dm.input_shapes == {"text": (48,), "audio": (16,)}
    assert len(dm.val_dataloader()) == 0


def test_select_best_tests_the_best_validation_epoch(files, tmp_path):
    common = ["data=features", f"data.path={files['npz']}", LETTERS, "fuser=concat", "data.val_fraction=0.2",
              "eval.conditions=[TIA]", "trainer.max_epochs=4", "task.optimizer.lr=0.5"]
    last = run(cfg(tmp_path / "last", *common))
    best = run(cfg(tmp_path / "best", *common, "eval.select=best"))
    assert last["selection"]["select"] == "last" and last["selection"]["epoch"] == 3
    assert best["selection"]["select"] == "best" and 0 <= best["selection"]["epoch"] <= 3
    assert best["selection"]["val_acc"] >= last["selection"]["val_acc"]
    assert Path(best["selection"]["checkpoint"]).is_file()
    with pytest.raises(UserError, match="eval.select=best needs a validation split"):
        run(cfg(tmp_path / "none", *common[:-3], "data.val_fraction=0", "eval.select=best"))


@pytest.fixture(scope="module")
def clips_root(tmp_path_factory) -> Path:
    """32 clips of 4 classes (2 tones x 2 colours) and a header CSV without split column."""
    root = tmp_path_factory.mktemp("clips")
    rows = [("path", "label")]
    for i in range(32):
        k = i % 4
        name = f"media/c{i:03d}.mp4"
        write_clip(root / name, seconds=0.6, tone_hz=TONES_HZ[k // 2], colour=COLOURS[k % 2], fps=10, size=(16, 16),
                   sample_rate=16000, stereo=False, seed=i)
        rows.append((name, f"tone{k // 2} colour{k % 2}"))
    with open(root / "clips.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    return root


CLIPS = ["data=clips", "data.num_frames=3", "data.frame_size=[16,16]", "data.audio_samples=8000",
         "data.spectrogram.rows=1", "data.spectrogram.n_mels=16", "data.spectrogram.frames=50", "data.batch_size=8",
         "data.num_workers=0", "data.preprocess_workers=1", "data.show_progress=false", "data.test_fraction=0.25",
         "trainer.max_epochs=6", "task=classification_adam",
         # the extractor configs of the media datasets apply; a learned linear map keeps this test small
         "+extractor@extractors.audio=linear_map", "+extractor@extractors.video=linear_map",
         "extractors.audio.out_dim=32", "extractors.video.out_dim=32"]


@pytest.mark.parametrize("fuser", FUSERS)
def test_clips_folder_every_fuser_every_condition(clips_root, tmp_path, fuser):
    res = run(cfg(tmp_path, *CLIPS, f"data.root={clips_root}", f"fuser={fuser}"))
    assert list(res["metrics"]) == ["AV", "A", "V"]
    acc = {c: m["acc"] for c, m in res["metrics"].items()}
    assert acc["AV"] > 0.5 and min(acc.values()) > 0.25 - 1e-6, acc  # chance 0.25; A or V alone tells half


def bad_files(root: Path) -> dict[str, tuple[Path, str]]:
    good = make_arrays(n=40)
    rows = dict(good, image=good["image"][:-1])
    nan = dict(good)
    nan["audio"] = nan["audio"].copy()
    nan["audio"][3, 2] = np.nan
    np.savez(root / "rows.npz", **rows)
    np.savez(root / "nan.npz", **nan)
    (root / "unseen").mkdir()
    np.savez(root / "unseen" / "train.npz", **{k: v[:30] for k, v in good.items()})
    np.savez(root / "unseen" / "test.npz", **dict({k: v[30:] for k, v in good.items()}, label=np.full(10, 7)))
    (root / "text.npz").write_text("text,image,audio,label\n1,2,3,0\n")
    return {
        "rows": (root / "rows.npz", "modality 'image' has 39 rows but 'label' has 40"),
        "nan": (root / "nan.npz", "modality 'audio' has 1 NaN/inf values"),
        "unseen": (root / "unseen" / "test.npz", "test labels [7] never occur in train"),
        "not an array": (root / "text.npz", "is not a readable .npz of arrays"),
    }


def test_bad_files_are_one_line_and_exit_code_2(tmp_path):
    cases = bad_files(tmp_path)
    procs = {}
    for name, (path, _) in cases.items():  # in parallel: each is a fresh interpreter
        data = path.parent if name == "unseen" else path
        procs[name] = subprocess.Popen(
            [sys.executable, "-m", "gmf_repro", *FAST, "data=features", f"data.path={data}",
             f"hydra.run.dir={tmp_path / name.replace(' ', '_')}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    for name, proc in procs.items():
        _, err = proc.communicate(timeout=300)
        path, message = cases[name]
        lines = [line for line in err.splitlines() if line.strip()]
        assert proc.returncode == 2 and len(lines) == 1, (name, err[-2000:])
        assert lines[0].startswith(f"error: {path}") and message in lines[0], (name, lines[0])


def test_bad_clip_list_names_the_row(clips_root, tmp_path):
    (tmp_path / "bad.csv").write_text("path,label\nmedia/c000.mp4,a\nmedia/c001.mp4\n")
    with pytest.raises(UserError, match="bad.csv:3: expected 'path,label.,split.', got 1 fields"):
        build(cfg(tmp_path, *CLIPS, f"data.root={clips_root}", f"data.csv_file={tmp_path / 'bad.csv'}").data)


def test_retrieval_on_feature_files_needs_no_code(files, tmp_path):
    res = run(cfg(tmp_path, "data=features", f"data.path={files['npz']}", "data.modalities=[image,text]",
                  "task=retrieval", "task.query=image", "task.gallery=text", "fuser=retrieval/gmf",
                  "eval.conditions=[IT]", "task.ks=[10]", "task.rerank_k=10"))
    assert set(res["metrics"]) == {"IT"} and res["metrics"]["IT"]["map@10"] > 0.6  # 4 classes: chance ~0.25


def test_multirun_flag_may_follow_the_overrides():
    from gmf_repro.__main__ import flags_first

    argv = ["gmf_repro", "data=features", "data.path=x.npz", "-m", "fuser=concat,gmf,mbt"]
    assert flags_first(argv) == ["gmf_repro", "-m", "data=features", "data.path=x.npz", "fuser=concat,gmf,mbt"]


def test_clip_cache_follows_another_split(clips_root, tmp_path):
    cache = f"data.cache_dir={tmp_path / 'cache'}"
    first = build(cfg(tmp_path, *CLIPS, f"data.root={clips_root}", cache, "data.val_fraction=0.2").data)
    first.prepare_data()
    first.setup()
    assert first.has_val and (len(first.train_set), len(first.val_set), len(first.test_set)) == (16, 8, 8)
    # another seed draws other splits: the cache's clip-list hash differs, so its splits are rewritten
    # (the decoded arrays are kept), never read with the old ones
    other = build(cfg(tmp_path, *CLIPS, f"data.root={clips_root}", cache, "data.val_fraction=0.2", "seed=2").data)
    other.prepare_data()
    other.setup()
    want = {c.key: c.split for c in other.clips}
    for split in ("train", "val", "test"):
        keys = getattr(other, f"{split}_set").source.keys
        assert keys and all(want[k] == split for k in keys)
    assert set(first.test_set.source.keys) != set(other.test_set.source.keys)


def test_report_gives_own_data_its_own_table(tmp_path, capsys):
    import json

    from gmf_repro.report.__main__ import main

    own = {"fuser": "gmf", "data": "features", "status": "ok", "complexity": {"params": 1000},
           "metrics": {"TIA": {"acc": 0.9}, "T": {"acc": 0.6}, "A": {"acc": 0.4}}}
    paper = {"fuser": "gmf", "data": "avsynth", "table": "table2_frozen", "status": "ok",
             "metrics": {"AV": {"acc": 0.7}, "A": {"acc": 0.5}}}
    for name, res in (("own", own), ("paper", paper)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps(res))
    assert main([str(tmp_path), "--format", "markdown", "--no-claims"]) == 0
    out = capsys.readouterr().out
    assert "| method | TIA | T | A | CPU s | Params (M) | FLOPs (G) |" in out
    assert "| GMF | 90.00 | 60.00 | 40.00 | - | 0.001 | - |" in out  # no paper numbers beside own data
    # the avsynth run in its paper table's layout, and not beside VGGSound numbers
    assert "Table 2 (VGGSound)" in out and "| GMF | 50.00 | - | 70.00 |" in out and "22.01" not in out


def test_train_classes_come_from_train_and_name_the_file():
    from gmf_repro.data.splits import train_classes

    where = {"train": "a/train.npz", "val": "a/val.npz", "test": "a/test.npz"}
    labels = {"train": np.array([2, 0, 2, 1]), "val": np.array([0]), "test": np.array([1, 2])}
    assert train_classes(labels, where, "samples") == [0, 1, 2]
    with pytest.raises(UserError, match=r"^a/val\.npz: val labels \[5\] never occur in train"):
        train_classes(dict(labels, val=np.array([5, 0])), where, "samples")
    one_class = r"^a/train\.npz: the train clips have 1 label; classification needs at least 2$"
    with pytest.raises(UserError, match=one_class):
        train_classes({"train": np.array(["x", "x"]), "test": np.array(["x"])}, where, "clips")

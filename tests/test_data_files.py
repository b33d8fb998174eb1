"""Careless and hostile data files: each is one line naming the file, line, array or setting and the fix, raised
when the datamodule is built (before any model or trainer), or is read correctly. Feature files (data=features),
clip lists (data=clips, any list file through data/csv_rows.py) and ActivityNet's feature files.

The tests run as root here, where a mode-000 file is readable: an unreadable file is simulated by making ``open``
(or ``Path.read_bytes``) raise the PermissionError the OS would raise; where the tests run as another user, a real
mode-000 file is tried as well."""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_cfg
from test_retrieval import write_pickles

from gmf_repro.data import activitynet, features
from gmf_repro.data.activitynet import ActivityNetDataModule
from gmf_repro.data.clips import ClipsDataModule
from gmf_repro.data.csv_rows import read_csv_rows
from gmf_repro.data.features import FeatureFilesDataModule
from gmf_repro.data.safe_pickle import convert_activitynet
from gmf_repro.data.splits import stratified_split
from gmf_repro.errors import UserError
from gmf_repro.utils import build

ANET = {"image_dim": 8, "video_dim": 32, "num_classes": 3, "proposals": 4}
# what ClipsDataModule needs besides root and csv_file (the media settings; nothing is decoded when it is built)
MEDIA = {"num_frames": 3, "frame_size": [16, 16], "fps": 5, "sample_rate": 16000, "audio_samples": 8000,
         "spectrogram": {"kind": "mel_rows", "rows": 1, "sample_rate": 16000, "n_fft": 400, "win_length": 400,
                         "hop_length": 160, "n_mels": 16, "frames": 50, "log": False}}


def arrays(n: int = 60, k: int = 3, seed: int = 0, **extra) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"text": rng.normal(size=(n, 8)).astype(np.float32), "audio": rng.normal(size=(n, 4)).astype(np.float32),
            "label": np.arange(n) % k, **extra}


def save(path: Path, **data) -> Path:
    np.savez(path, **data)
    return path


def features_dm(path: Path, **kw) -> FeatureFilesDataModule:
    return FeatureFilesDataModule(str(path), **kw)


# -- splits of small sets (a 4-row file, one row per class) ---------------------------------------------------------
def test_a_small_set_is_split_so_that_every_asked_split_has_a_sample(tmp_path):
    dm = features_dm(save(tmp_path / "four.npz", **arrays(n=4, k=2)))  # round(0.2 * 2) = 0 per class
    assert dm.sizes == {"train": 3, "test": 1}
    dm = features_dm(save(tmp_path / "six.npz", **arrays(n=6, k=2)), val_fraction=0.1)
    assert dm.sizes == {"train": 3, "val": 1, "test": 2}  # test: round(0.2 * 3) = 1 per class; val: 0, then 1
    # splits that were not empty are as before: round(fraction * n) per class, the rest in train
    labels = np.arange(100) % 4
    split = stratified_split(labels, 3, 0.2, 0.1)
    for c in range(4):
        assert [(split[labels == c] == s).sum() for s in ("train", "val", "test")] == [18, 2, 5]
    assert np.array_equal(split, stratified_split(labels, 3, 0.2, 0.1))


def test_one_sample_per_class_names_the_counts(tmp_path):
    path = save(tmp_path / "one_each.npz", **arrays(n=6, k=6))
    with pytest.raises(UserError) as err:
        features_dm(path)
    assert str(err.value) == (
        f"{path}: 6 samples in 6 classes (at most 1 per class): data.test_fraction=0.2 puts no sample in test, since "
        f"every class keeps one in train; give more samples per class (a class of one can only train), or give train "
        f"and test files")


@pytest.mark.parametrize("fractions", [(0.6, 0.5), (0.5, 0.5)])
def test_fractions_that_leave_no_train_sample_are_named(tmp_path, fractions):
    test, val = fractions
    with pytest.raises(UserError, match=rf"^data.test_fraction={test} \+ data.val_fraction={val} = {test + val:g} "
                                        r"leaves no sample for train; make the sum below 1"):
        features_dm(save(tmp_path / "ok.npz", **arrays()), test_fraction=test, val_fraction=val)
    (tmp_path / "clips.csv").write_text("a.mp4,x\nb.mp4,y\n")
    with pytest.raises(UserError, match=r"^data.test_fraction=.* leaves no sample for train"):
        ClipsDataModule(str(tmp_path), test_fraction=test, val_fraction=val, **MEDIA)


# -- modalities: reserved names, no features, complex numbers ---------------------------------------------------------
def test_the_labels_cannot_be_a_modality(tmp_path):
    # a label column [N, 1] passed the modality checks and crashed with "unhashable type: 'list'"
    column = save(tmp_path / "column.npz", **dict(arrays(), label=(np.arange(60) % 3)[:, None]))
    for path in (column, save(tmp_path / "flat.npz", **arrays())):
        cfg = make_cfg(tmp_path, ["data=features", f"data.path={path}", "data.modalities=[audio,label]"], tiny=False)
        with pytest.raises(UserError) as err:
            build(cfg.data)  # through Hydra: data.modalities arrives as a ListConfig
        assert str(err.value) == ("data.modalities names 'label', the labels (data.label_key); list only feature "
                                  "arrays, e.g. data.modalities=[audio]")
    with_index = save(tmp_path / "index.npz", **arrays(index=np.arange(60)[:, None].astype(float)))
    with pytest.raises(UserError, match=r"^data.modalities names 'index', a reserved name .* rename that array"):
        features_dm(with_index, modalities={"audio": "A", "index": "I"})
    # null takes every array but the reserved ones: the batches' own index stays the sample's number
    dm = features_dm(with_index)
    assert dm.modalities == ["text", "audio"]
    assert torch.equal(dm.train_set.tensors["index"], torch.arange(len(dm.train_set)))


def test_a_modality_without_features_or_with_complex_values_is_refused(tmp_path):
    zero = save(tmp_path / "zero.npz", **arrays(n=300, empty=np.zeros((300, 0), np.float32)))
    with pytest.raises(UserError) as err:
        features_dm(zero, modalities=["audio", "empty"])
    assert str(err.value) == (f"{zero}: modality 'empty' has shape (300, 0): no features per sample; store its "
                              f"features or leave it out of data.modalities")
    cx = save(tmp_path / "cx.npz", **arrays(waves=(np.ones((60, 4)) + 2j).astype(np.complex64)))
    with pytest.raises(UserError, match=rf"^{cx}: modality 'waves' has dtype complex64 \(complex\); its imaginary "
                                        r"part would be lost: store real features, e\.g\. numpy\.concatenate"):
        features_dm(cx)
    big = save(tmp_path / "big.npz", **arrays(huge=np.full((60, 2), 1e300)))
    with pytest.raises(UserError, match=r"'huge' has 120 values beyond float32's range .* in 60 rows \(first: row "
                                        r"0\); rescale that modality"):
        features_dm(big)


# -- files the OS, numpy or torch will not read as arrays -----------------------------------------------------------
def permission_denied(real_open, denied: Path):
    def fake_open(file, *args, **kwargs):
        if Path(file) == denied:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    return fake_open


def test_an_unreadable_file_names_the_os_error(tmp_path, monkeypatch):
    path = save(tmp_path / "locked.npz", **arrays())
    if os.geteuid() != 0:  # a real mode-000 file where permissions apply (not as root)
        path.chmod(0)
        with pytest.raises(UserError, match=rf"^cannot read {path}: Permission denied; give the user"):
            features_dm(path)
        path.chmod(0o644)
    monkeypatch.setattr(features, "open", permission_denied(open, path), raising=False)
    with pytest.raises(UserError) as err:
        features_dm(path)
    assert str(err.value) == (f"cannot read {path}: Permission denied; give the user running this read access "
                              f"(e.g. chmod u+r) or copy the file somewhere readable")
    (tmp_path / "clips.csv").write_text("a.mp4,x\n")
    real = Path.read_bytes

    def read_bytes(p: Path) -> bytes:
        if p.name == "clips.csv":
            raise PermissionError(13, "Permission denied")
        return real(p)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    with pytest.raises(UserError, match=r"^cannot read .*clips\.csv: Permission denied; give the user running this"):
        read_csv_rows(tmp_path / "clips.csv")


def test_empty_and_foreign_files_are_named(tmp_path):
    (tmp_path / "zero_bytes.npz").write_bytes(b"")
    np.savez(tmp_path / "no_arrays.npz")
    save(tmp_path / "no_rows.npz", text=np.zeros((0, 8)), label=np.zeros(0, int))
    np.save(tmp_path / "single.npy", np.zeros(3))
    (tmp_path / "single.npy").rename(tmp_path / "single.npz")
    (tmp_path / "pickled.npz").write_bytes(pickle.dumps({"text": np.zeros(3)}, protocol=2))
    save(tmp_path / "objects.npz", text=np.array([1, "a"], dtype=object), label=np.arange(2))
    (tmp_path / "empty.pt").write_bytes(b"")
    torch.save({}, tmp_path / "empty_dict.pt")
    expected = {
        "zero_bytes.npz": "is empty (0 bytes); write it again: save one array per modality",
        "no_arrays.npz": "holds no arrays; save one array per modality plus the labels",
        "no_rows.npz": " holds no samples ('label' has 0 rows); save it again with its samples",
        "single.npz": "holds a single array (an .npy), not named arrays",
        "pickled.npz": "is not a readable .npz of arrays (a pickle, which is never read)",
        "objects.npz": ": array 'text' holds Python objects, which are never read",
        "empty.pt": "is not a readable .pt file (it is empty (0 bytes))",
        "empty_dict.pt": "holds an empty dict; save it with torch.save",
    }
    for name, message in expected.items():
        with pytest.raises(UserError) as err:
            features_dm(tmp_path / name)
        text = str(err.value)
        assert text.startswith(f"{tmp_path / name}") and message in text and "\n" not in text, (name, text)


class CreatesAFile:
    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_pt_of_numpy_arrays_is_read_and_one_asking_for_code_is_refused_unrun(tmp_path):
    data = arrays()
    torch.save(data, tmp_path / "numpy.pt")  # numpy arrays, not tensors
    torch.save({k: torch.from_numpy(v) for k, v in data.items()}, tmp_path / "tensors.pt")
    bf16 = {k: (torch.from_numpy(v).bfloat16() if v.dtype == np.float32 else torch.from_numpy(v))
            for k, v in data.items()}
    torch.save(bf16, tmp_path / "bf16.pt")  # numpy has no bfloat16
    from_numpy, from_tensors = features_dm(tmp_path / "numpy.pt"), features_dm(tmp_path / "tensors.pt")
    for split in ("train_set", "test_set"):
        for key in ("text", "audio", "label"):
            assert torch.equal(getattr(from_numpy, split).tensors[key], getattr(from_tensors, split).tensors[key])
    assert features_dm(tmp_path / "bf16.pt").input_shapes == {"text": (8,), "audio": (4,)}
    victim = tmp_path / "created"
    torch.save({**data, "extra": CreatesAFile(victim)}, tmp_path / "hostile.pt")
    with pytest.raises(UserError, match=rf"^refused to load {tmp_path / 'hostile.pt'}: it asks for io\.open, "
                                        r"which a file of tensors never needs .* nothing from it was run"):
        features_dm(tmp_path / "hostile.pt")
    assert not victim.exists()


def test_per_split_sets_with_other_dims_name_them(tmp_path):
    (tmp_path / "sets").mkdir()
    save(tmp_path / "sets" / "train.npz", **arrays())
    save(tmp_path / "sets" / "test.npz", **dict(arrays(n=12), audio=np.zeros((12, 5), np.float32)))
    with pytest.raises(UserError) as err:
        features_dm(tmp_path / "sets")
    assert str(err.value) == (f"{tmp_path / 'sets'}: modality 'audio' has other feature dims per set (train [4], "
                              f"test [5]); give every set the same feature dims")


def test_negative_labels_are_classes_and_the_run_names_them(tmp_path, capsys):
    dm = features_dm(save(tmp_path / "signs.npz", **dict(arrays(), label=np.where(np.arange(60) % 2, 1, -1))))
    assert dm.classes == [-1, 1] and dm.num_classes == 2
    assert "2 classes (-1, 1)" in capsys.readouterr().out


# -- clip lists ------------------------------------------------------------------------------------------------------
def clip_list(root: Path, rows: list[str], name: str = "clips.csv") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / name
    path.write_text("path,label\n" + "".join(f"{r}\n" for r in rows))
    return path


ROWS = [f"media/c{i:02d}.mp4,class{i % 2}" for i in range(16)]


def test_an_exact_repeat_is_dropped_and_counted(tmp_path, capsys):
    path = clip_list(tmp_path, [*ROWS, ROWS[3], f"./{ROWS[5]}"])  # lines 18 and 19 repeat lines 5 and 7
    dm = ClipsDataModule(str(tmp_path), **MEDIA)
    assert len(dm.clips) == 16 and dm.repeated_rows == [(18, 5), (19, 7)]
    assert len({c.key for c in dm.clips}) == 16
    err = capsys.readouterr().err
    assert err == (f"warning: {path}: 2 repeated row(s) dropped (line 18 repeats line 5, line 19 repeats line 7); "
                   f"delete them from the file to silence this\n")


@pytest.mark.parametrize("other", ["label", "split"])
def test_a_clip_listed_with_two_labels_or_splits_names_both_lines(tmp_path, other):
    rows = [f"{r},train" for r in ROWS] + ["media/t0.mp4,class0,test", "media/t1.mp4,class1,test"]
    again = "media/c03.mp4,class0,train" if other == "label" else "media/c03.mp4,class1,test"  # line 5: class1
    path = clip_list(tmp_path, [*rows, again])
    with pytest.raises(UserError) as err:
        ClipsDataModule(str(tmp_path), **MEDIA)
    assert str(err.value) == (f"{path}:20: lists the clip of line 5 again with another {other}; keep one row per "
                              f"clip (delete the wrong one)")


def test_a_clip_list_in_another_encoding_names_line_column_and_fix(tmp_path):
    path = tmp_path / "clips.csv"
    path.write_bytes("path,label\na.mp4,cafe\nb.mp4,café\n".encode("latin-1"))
    with pytest.raises(UserError) as err:
        ClipsDataModule(str(tmp_path), **MEDIA)
    assert str(err.value) == (f"{path}:3: not UTF-8 text (byte 0xe9) at column 10; the file looks Windows-1252 / "
                              f"Latin-1 encoded: save it as UTF-8, e.g. iconv -f CP1252 -t UTF-8 clips.csv > utf8.csv")
    path.write_bytes("path,label\na.mp4,x\n".encode("utf-16"))
    with pytest.raises(UserError, match=rf"^{path}:1: the file is UTF-16 text .* iconv -f UTF-16 -t UTF-8"):
        read_csv_rows(path)


def test_a_clip_list_of_one_label_or_too_few_clips_is_named(tmp_path):
    clip_list(tmp_path / "one", [f"media/c{i}.mp4,same" for i in range(8)])
    with pytest.raises(UserError, match=r"clips\.csv: the train clips have 1 label; classification needs at least 2"):
        ClipsDataModule(str(tmp_path / "one"), **MEDIA)
    clip_list(tmp_path / "few", ["a.mp4,x", "b.mp4,y"])
    with pytest.raises(UserError, match=r"clips\.csv: 2 samples in 2 classes \(at most 1 per class\): "
                                        r"data\.test_fraction=0\.2 puts no sample in test"):
        ClipsDataModule(str(tmp_path / "few"), **MEDIA)
    clip_list(tmp_path / "bad", ["a.mp4,x"])
    with pytest.raises(UserError, match=r"^data.modalities=\['audio', 'label'\] names \['label'\]; clips has"):
        ClipsDataModule(str(tmp_path / "bad"), modalities=["audio", "label"], **MEDIA)


# -- ActivityNet's files -----------------------------------------------------------------------------------------------
def test_a_converted_folder_without_its_pickles_is_read(tmp_path):
    root = write_pickles(tmp_path / "anet")
    before = ActivityNetDataModule(str(root), **ANET)
    before.setup()
    convert_activitynet(root)
    for p in root.glob("*.pkl"):
        p.unlink()
    after = ActivityNetDataModule(str(root), **ANET)
    after.setup()
    for split in ("train_set", "test_set"):
        for key in ("image", "video", "label"):
            assert torch.equal(getattr(before, split).tensors[key], getattr(after, split).tensors[key])
    (root / "test_i.npz").unlink()
    with pytest.raises(UserError, match=r"file missing: .*test_i\.pkl \(or its conversion test_i\.npz\)"):
        ActivityNetDataModule(str(root), **ANET)


def test_activitynet_file_errors_come_when_the_datamodule_is_built(tmp_path, monkeypatch):
    root = write_pickles(tmp_path / "anet")
    with pytest.raises(UserError, match=r"labels of split 'train' span 1\.\.3 .* outside 0\.\.1; set data\.num_"):
        ActivityNetDataModule(str(root), **{**ANET, "num_classes": 2})
    convert_activitynet(root)
    # a converted video file's header gives its shape without reading it
    with pytest.raises(UserError, match=r"train_v\.npz holds 4 proposals per video, expected data\.proposals=64"):
        ActivityNetDataModule(str(root), **{**ANET, "proposals": 64})
    with pytest.raises(UserError, match=r"train_v\.npz have shape \(40, 4, 32\), expected \[N, 16\]; set "
                                        r"data\.video_dim"):
        ActivityNetDataModule(str(root), **{**ANET, "video_dim": 16})
    image = np.load(root / "train_i.npz")["x"]
    image[5, 1] = np.nan
    np.savez(root / "train_i.npz", x=image)
    with pytest.raises(UserError, match=r"train_i\.npz holds 1 NaN/inf values in 1 rows \(first: row 5\)"):
        ActivityNetDataModule(str(root), **ANET)
    image[5, 1] = 0.0
    np.savez(root / "train_i.npz", x=image[:30])
    with pytest.raises(UserError, match=r"split 'train' has different numbers of rows per file: .*'image': 30"):
        ActivityNetDataModule(str(root), **ANET)
    monkeypatch.setattr(activitynet, "open", permission_denied(open, root / "test_v.npz"), raising=False)
    with pytest.raises(UserError, match=rf"^cannot read {root / 'test_v.npz'}: Permission denied"):
        ActivityNetDataModule(str(root), **ANET)


def test_a_damaged_pooled_video_cache_is_named(tmp_path):
    root = write_pickles(tmp_path / "anet")
    kw = {**ANET, "cache_dir": str(tmp_path / "cache")}
    ActivityNetDataModule(str(root), **kw).setup()
    (tmp_path / "cache" / "train_v_mean.npz").write_bytes(b"truncated")
    with pytest.raises(UserError, match=r"train_v_mean\.npz is not a readable pooled-video cache .* delete it"):
        ActivityNetDataModule(str(root), **kw).setup()


def test_a_pooled_video_cache_follows_its_source(tmp_path, capsys):
    """A replaced video file is pooled again (its cache says what it was made from); a deleted one leaves the
    cache as the only copy, which is used."""
    root = write_pickles(tmp_path / "anet")
    kw = {**ANET, "cache_dir": str(tmp_path / "cache")}
    first = ActivityNetDataModule(str(root), **kw)
    first.setup()
    with open(root / "train_v.pkl", "rb") as f:
        video = pickle.load(f)
    with open(root / "train_v.pkl", "wb") as f:
        pickle.dump(video + 1.0, f, protocol=2)
    st = (root / "train_v.pkl").stat()  # the same size; a later time even on a file system with coarse clocks
    os.utime(root / "train_v.pkl", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    again = ActivityNetDataModule(str(root), **kw)
    again.setup()
    assert "train_v_mean.npz: pooled from train_v.pkl (" in capsys.readouterr().err
    moved = again.train_set.tensors["video"] - first.train_set.tensors["video"]
    assert torch.allclose(moved, torch.ones_like(moved))
    (root / "train_v.pkl").unlink()
    kept = ActivityNetDataModule(str(root), **kw)
    kept.setup()
    assert torch.equal(kept.train_set.tensors["video"], again.train_set.tensors["video"])
    assert capsys.readouterr().err == ""


# -- the command line: exit code 2 and one line, before a trainer exists -------------------------------------------
FAST = ["threads=1", "logger=none", "progress=none", "print_config=false", "trainer=cpu", "trainer.max_epochs=1"]


def test_bad_data_files_stop_the_command_with_one_line_and_exit_code_2(tmp_path):
    one_each = save(tmp_path / "one_each.npz", **arrays(n=6, k=6))
    ok = save(tmp_path / "ok.npz", **arrays())
    cx = save(tmp_path / "cx.npz", **arrays(waves=np.ones((60, 2), np.complex64)))
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "clips.csv").write_bytes(b"path,label\na.mp4,x\nb.mp4,caf\xe9\n")
    clip_list(tmp_path / "twice", [*ROWS, "media/c03.mp4,class0"])
    anet = write_pickles(tmp_path / "anet")
    cases = {
        "one_each": (["data=features", f"data.path={one_each}"], f"{one_each}: 6 samples in 6 classes"),
        "label": (["data=features", f"data.path={ok}", "data.modalities=[audio,label]"],
                  "data.modalities names 'label', the labels"),
        "complex": (["data=features", f"data.path={cx}"], f"{cx}: modality 'waves' has dtype complex64"),
        "fractions": (["data=features", f"data.path={ok}", "data.test_fraction=0.5", "data.val_fraction=0.6"],
                      "data.test_fraction=0.5 + data.val_fraction=0.6 = 1.1 leaves no sample for train"),
        "latin1": (["data=clips", f"data.root={tmp_path / 'clips'}"],
                   f"{tmp_path / 'clips' / 'clips.csv'}:3: not UTF-8 text (byte 0xe9) at column 10"),
        "two_labels": (["data=clips", f"data.root={tmp_path / 'twice'}"],
                       f"{tmp_path / 'twice' / 'clips.csv'}:18: lists the clip of line 5 again with another label"),
        "anet": (["experiment=activitynet_128", f"data.root={anet}", "data.image_dim=8", "data.video_dim=32",
                  "data.num_classes=2", "data.proposals=4"], "ActivityNet labels of split 'train' span 1..3"),
    }
    env = {**os.environ, "WANDB_MODE": "offline"}
    procs = {name: subprocess.Popen([sys.executable, "-m", "gmf_repro", *FAST, *args,
                                     f"hydra.run.dir={tmp_path / 'runs' / name}"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env)
             for name, (args, _) in cases.items()}
    for name, proc in procs.items():
        _, err = proc.communicate(timeout=600)
        lines = [line for line in err.splitlines() if line.strip()]
        assert proc.returncode == 2 and len(lines) == 1, (name, err[-2000:])
        assert lines[0].startswith(f"error: {cases[name][1]}"), (name, lines[0])

"""Released feature pickles are read without running code from them, and convert to .npz once."""
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import cli
from test_retrieval import write_pickles

from gmf_repro.data.activitynet import ActivityNetDataModule
from gmf_repro.data.safe_pickle import convert_activitynet, load_array, load_pickle
from gmf_repro.errors import UserError

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "convert_activitynet.py"
SMALL = {"image_dim": 8, "video_dim": 32, "num_classes": 3, "proposals": 4}


class CreatesAFile:
    """What a hostile feature file holds: unpickling it would call ``open(path, "w")``."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def plant(path: Path, victim: Path) -> None:
    """Replace a feature pickle with arrays plus one object whose loading creates ``victim``."""
    with open(path, "wb") as f:
        pickle.dump({"x": np.zeros((4, 4, 32), np.float32), "y": CreatesAFile(victim)}, f, protocol=2)


def test_a_pickle_that_would_run_code_is_refused_in_one_line_and_nothing_runs(tmp_path):
    root = write_pickles(tmp_path / "anet")
    victim = tmp_path / "created_by_the_pickle"
    plant(root / "train_v.pkl", victim)
    dm = ActivityNetDataModule(str(root), **SMALL)
    with pytest.raises(UserError) as err:
        dm.setup()
    assert str(err.value) == (
        f"refused to load {root / 'train_v.pkl'}: it asks for io.open, which a file of feature arrays never needs "
        f"and which could run code; nothing from it was run. Get the file again from its source (only numpy "
        f"arrays, lists, dicts, numbers and strings are read)")
    assert not victim.exists()
    # the same file through the converter: refused the same way, no .npz written
    with pytest.raises(UserError, match=r"refused to load .*train_v\.pkl: it asks for io\.open"):
        convert_activitynet(root)
    assert not victim.exists() and not (root / "train_v.npz").exists()


def test_a_hostile_feature_file_stops_the_cli_run_with_one_line(tmp_path):
    root = write_pickles(tmp_path / "anet")
    victim = tmp_path / "created_by_the_pickle"
    plant(root / "test_label.pkl", victim)
    proc = cli("gmf_repro", "threads=1", "logger=none", "progress=none", "print_config=false", "trainer=cpu",
               "experiment=activitynet_128", f"data.root={root}", "data.image_dim=8", "data.video_dim=32",
               "data.num_classes=3", "data.proposals=4", "extractors.video.out_dim=8",
               f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert errors[0].startswith(f"error: refused to load {root / 'test_label.pkl'}: it asks for io.open")
    assert not victim.exists()


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_arrays_lists_dicts_numbers_and_strings_are_read_at_every_protocol(tmp_path, protocol):
    obj = {"video": np.arange(24, dtype=np.float32).reshape(2, 3, 4), "labels": [1, 2, 3], "name": "train",
           "pair": (1.5, b"raw"), "scalar": np.float64(0.25), "complex": 1 + 2j}
    path = tmp_path / "f.pkl"
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    got = load_pickle(path)
    assert np.array_equal(got["video"], obj["video"]) and got["video"].dtype == np.float32
    assert {k: v for k, v in got.items() if k != "video"} == {k: v for k, v in obj.items() if k != "video"}


def test_python2_and_numpy1_names_are_read(tmp_path):
    """A Python 2 / numpy 1.x release names numpy.core.multiarray and __builtin__, not numpy 2's numpy._core."""
    data = pickle.dumps([np.ones((2, 3), np.float32), 2 + 1j], protocol=2)
    assert b"numpy._core.multiarray" in data and b"c__builtin__\ncomplex" in data  # Python 2's name already
    old = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    path = tmp_path / "old.pkl"
    path.write_bytes(old)
    array, number = load_pickle(path)
    assert np.array_equal(array, np.ones((2, 3), np.float32)) and number == 2 + 1j


def test_random_bytes_are_one_line(tmp_path):
    path = tmp_path / "train_v.pkl"
    path.write_bytes(os.urandom(512))
    with pytest.raises(UserError, match=rf"^{path} is not a readable pickle \(.*\); get the file again from its"):
        load_pickle(path)


def test_converted_npz_is_read_instead_of_the_pickle_with_the_same_data(tmp_path):
    root = write_pickles(tmp_path / "anet")
    before = ActivityNetDataModule(str(root), **SMALL)
    before.setup()
    written = convert_activitynet(root)
    assert sorted(p.name for p in written) == sorted(f"{s}_{k}.npz" for s in ("train", "test")
                                                     for k in ("v", "i", "label"))
    assert convert_activitynet(root) == []  # once: an existing .npz is kept
    # the pickles can no longer be what a run reads: it reads the .npz and the same arrays come out
    for p in root.glob("*.pkl"):
        p.write_bytes(b"not a pickle any more")
    after = ActivityNetDataModule(str(root), **SMALL)
    after.setup()
    for split in ("train_set", "test_set"):
        for key in ("image", "video", "label"):
            assert torch.equal(getattr(before, split).tensors[key], getattr(after, split).tensors[key])
    assert after.scaling == before.scaling
    (root / "test_i.npz").write_bytes(b"truncated")
    with pytest.raises(UserError, match=r"test_i\.npz is not a readable conversion of test_i\.pkl .*convert again"):
        load_array(root / "test_i.pkl")


def test_convert_script_help_and_run(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    helped = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, env=env)
    assert helped.returncode == 0 and "usage: convert_activitynet.py" in helped.stdout and "--splits" in helped.stdout
    root = write_pickles(tmp_path / "anet")
    done = subprocess.run([sys.executable, str(SCRIPT), str(root)], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("wrote ") == 6 and (root / "train_v.npz").is_file()
    missing = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "nowhere")], capture_output=True,
                             text=True, env=env)
    assert missing.returncode == 2 and missing.stderr.startswith(f"error: {tmp_path / 'nowhere'} is not a folder")

"""The decode-once cache under concurrency, damage and edits of the list file; vggsound.csv parsing."""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest

from gmf_repro.data.cache import CacheReader, build_cache
from gmf_repro.data.feature_store import check_store, write_store
from gmf_repro.data.media import CORRUPT, ClipError, MediaSpec, decode_clip
from gmf_repro.data.shards import ShardError, ShardLock, job_tag
from gmf_repro.data.vggsound import VGGSoundDataModule, read_vggsound_csv
from gmf_repro.errors import UserError
from gmf_repro.fixtures import make_vggsound, write_clip

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
SMALL = dict(num_frames=4, frame_size=[16, 12], fps=5, sample_rate=16000, audio_samples=32000,
             spectrogram=dict(kind="mel_rows", rows=2, n_mels=16, frames=100), batch_size=4, num_workers=0,
             show_progress=False, preprocess_workers=1)
OVERRIDES = ["data.num_frames=4", "data.frame_size=[16,12]", "data.audio_samples=32000", "data.spectrogram.rows=2"]


@pytest.fixture(scope="module")
def vgg_root(tmp_path_factory) -> Path:
    return make_vggsound(tmp_path_factory.mktemp("vgg"), 16, seconds=1.2, size=(24, 32), damaged=False)


def _args(root: Path, cache: Path, *extra: str) -> list[str]:
    return [f"data.root={root}", f"data.cache_dir={cache}", *OVERRIDES, "--workers", "1", "--no-progress", *extra]


def _job(args: list[str], log: Path) -> None:
    """One preprocess job in a forked process (no second import of torch): stdout+stderr to ``log``."""
    with open(log, "w") as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
        sys.stdout, sys.stderr = os.fdopen(1, "w", buffering=1), os.fdopen(2, "w", buffering=1)
        sys.path.insert(0, str(SCRIPTS))
        import preprocess

        os._exit(preprocess.cli(args))


def _start(args: list[str], log: Path) -> mp.process.BaseProcess:
    log.touch()
    proc = mp.get_context("fork").Process(target=_job, args=(args, log))
    proc.start()
    return proc


def _arrays(cache: Path) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
    r = CacheReader(cache)
    return (np.stack([r.video(i) for i in range(len(r))]), np.stack([r.audio(i) for i in range(len(r))]),
            r.keys, r.labels)


def _shard_files(cache: Path) -> dict[str, bytes]:
    return {f"{d.name}/{f}": (d / f).read_bytes() for d in sorted(cache.glob("shard-*-of-*")) if d.is_dir()
            for f in ("video.u8", "audio.i16", "clips.csv")}


def _dm(root: Path, cache: Path, **kw) -> VGGSoundDataModule:
    return VGGSoundDataModule(str(root), cache_dir=str(cache), **{**SMALL, **kw})


# -- 1. concurrent builds ------------------------------------------------------------------------------
def test_two_preprocess_jobs_on_one_cache_match_a_single_build(vgg_root, tmp_path):
    shared = tmp_path / "shared"
    logs = [tmp_path / f"job{i}.log" for i in range(2)]
    jobs = [_start(_args(vgg_root, shared, "--num-shards", "4"), log) for log in logs]
    for j in jobs:
        j.join(timeout=300)
    texts = [log.read_text() for log in logs]
    assert [j.exitcode for j in jobs] == [0, 0], [t[-800:] for t in texts]
    assert all("kept 16 of 16 clips" in t for t in texts)
    single = tmp_path / "single"
    dm = _dm(vgg_root, single)
    build_cache(dm.list_clips(), dm.spec, single, num_shards=4, show_progress=False, root=vgg_root)
    assert _shard_files(shared) == _shard_files(single)
    assert not list(shared.glob("*.partial*"))  # each job's own partial folder is gone once renamed
    a, b = _arrays(shared), _arrays(single)
    assert len(a[2]) == 16 and a[2] == b[2]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_a_held_shard_is_waited_for_and_other_jobs_partials_are_left_alone(vgg_root, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    other = cache / "shard-00000-of-00002.partial-otherhost-123"  # a job on another host: not ours to delete
    other.mkdir()
    lock = ShardLock(cache / "shard-00000-of-00002.lock")
    assert lock.acquire(wait=False)
    log = tmp_path / "job.log"
    job = _start(_args(vgg_root, cache, "--num-shards", "2"), log)
    try:
        # the job builds shard 1, then waits for shard 0, which this process holds
        deadline = time.monotonic() + 120
        while "waiting for it" not in log.read_text() and job.is_alive():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.3)
        assert job.is_alive() and not (cache / "shard-00000-of-00002").exists()
        assert (cache / "shard-00001-of-00002" / "DONE").exists()
    finally:
        lock.release()
    job.join(timeout=300)
    text = log.read_text()
    assert job.exitcode == 0, text[-800:]
    assert "cache shard 0: another job is building it; waiting for it" in text and "kept 16 of 16 clips" in text
    assert other.is_dir()


def test_done_is_written_after_the_arrays_are_fsynced_and_dead_partials_are_removed(vgg_root, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    cache.mkdir()
    dead = subprocess.Popen(["true"])
    dead.wait()
    mine = cache / f"shard-00000-of-00001.partial-{job_tag().rsplit('-', 1)[0]}-{dead.pid}"  # a killed job here
    mine.mkdir()
    synced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    dm = _dm(vgg_root, cache)
    build_cache(dm.list_clips(), dm.spec, cache, num_shards=1, show_progress=False, root=vgg_root)
    names = [Path(p).name for p in synced]
    done = max(i for i, n in enumerate(names) if n.startswith(".DONE.") or n == "DONE")
    for f in ("video.u8", "audio.i16"):
        assert names.index(f) < done
    assert any(n.startswith(".clips.csv.") for n in names[:done])
    assert not mine.exists()


# -- 2. a damaged cache is noticed ---------------------------------------------------------------------
@pytest.mark.parametrize("damage", ["truncate_audio", "shorten_clips_csv"])
def test_damaged_shard_is_named_with_the_fix_and_preprocess_rebuilds_it(vgg_root, tmp_path, damage, capsys):
    sys.path.insert(0, str(SCRIPTS))
    import preprocess

    cache = tmp_path / "cache"
    args = [f"data.root={vgg_root}", f"data.cache_dir={cache}", *OVERRIDES, "--workers", "1", "--no-progress",
            "--num-shards", "2"]
    preprocess.main(args)
    before = _arrays(cache)
    shard = cache / "shard-00001-of-00002"
    if damage == "truncate_audio":
        data = (shard / "audio.i16").read_bytes()
        (shard / "audio.i16").write_bytes(data[: len(data) - 1000])
        what = "audio.i16 has"
    else:
        lines = (shard / "clips.csv").read_text().splitlines(keepends=True)
        (shard / "clips.csv").write_text("".join(lines[:-2]))
        what = "clips.csv lists 6 clips, its DONE record says 8"
    with pytest.raises(ShardError) as err:
        CacheReader(cache, "train")
    msg = str(err.value)
    assert "cache shard 1 (" in msg and what in msg and "--rebuild-shard 1" in msg and "\n" not in msg
    for build in (False, True):  # a run names the shard; it does not decode over a damaged disk unasked
        with pytest.raises(ShardError, match="cache shard 1"):
            _dm(vgg_root, cache, build_cache=build).setup()
    capsys.readouterr()
    preprocess.main(args)  # re-verifies the finished shards: rebuilds shard 1, keeps shard 0
    assert "cache shard 1" in capsys.readouterr().err
    after = _arrays(cache)
    for x, y in zip(before, after):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_rebuild_shard_option_decodes_it_again(vgg_root, tmp_path):
    sys.path.insert(0, str(SCRIPTS))
    import preprocess

    cache = tmp_path / "cache"
    args = [f"data.root={vgg_root}", f"data.cache_dir={cache}", *OVERRIDES, "--workers", "1", "--no-progress",
            "--num-shards", "2"]
    preprocess.main(args)
    stamps = [(cache / f"shard-0000{i}-of-00002" / "DONE").stat().st_mtime_ns for i in (0, 1)]
    preprocess.main([*args, "--rebuild-shard", "1"])
    assert (cache / "shard-00000-of-00002" / "DONE").stat().st_mtime_ns == stamps[0]
    assert (cache / "shard-00001-of-00002" / "DONE").stat().st_mtime_ns != stamps[1]


# -- 3. a stale cache is never read --------------------------------------------------------------------
def test_edited_labels_and_splits_update_the_cache_not_stale_labels(vgg_root, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "video").symlink_to(vgg_root / "video")
    rows = read_vggsound_csv(vgg_root / "vggsound.csv")
    (root / "vggsound.csv").write_text("".join(f"{y},{s},{lab},{sp}\n" for y, s, lab, sp in rows))
    cache = tmp_path / "cache"
    dm = _dm(root, cache)
    dm.setup()
    video_stamp = (cache / "shard-00000-of-00001" / "video.u8").stat().st_mtime_ns
    # edit: the first clip gets another label, the second moves from test to train
    first, second = rows[0], rows[1]
    assert second[3] == "test" or first[3] == "test"
    new_label = next(lab for _, _, lab, _ in rows if lab != first[2])
    edited = [(first[0], first[1], new_label, first[3]), (second[0], second[1], second[2], "train"), *rows[2:]]
    (root / "vggsound.csv").write_text("".join(f"{y},{s},{lab},{sp}\n" for y, s, lab, sp in edited))
    with pytest.raises(UserError, match="another clip list"):
        _dm(root, cache, build_cache=False).setup()
    with pytest.raises(UserError, match="another clip list"):
        CacheReader(cache, "train", list_hash=_dm(root, cache).clip_list_hash)
    fresh = _dm(root, cache)
    fresh.setup()
    key0, key1 = f"{first[0]}_{first[1]}", f"{second[0]}_{second[1]}"
    train = fresh.train_set.source
    classes = fresh.classes
    labels = {k: classes[int(lab)] for k, lab in zip(train.keys + fresh.test_set.source.keys,
                                                     [*train.labels, *fresh.test_set.source.labels])}
    assert labels[key0] == new_label and key1 in train.keys and key1 not in fresh.test_set.source.keys
    assert fresh.manifest["by_split"]["train"]["kept"] == sum(sp == "train" for *_, sp in edited)
    # the frames were not decoded again: only clips.csv changed
    assert (cache / "shard-00000-of-00001" / "video.u8").stat().st_mtime_ns == video_stamp
    # a clip removed from the list: that shard is rebuilt, and reads back without it
    (root / "vggsound.csv").write_text("".join(f"{y},{s},{lab},{sp}\n" for y, s, lab, sp in edited[:-1]))
    fewer = _dm(root, cache)
    fewer.setup()
    assert fewer.manifest["total"] == 15 and len(CacheReader(cache)) == 15


def test_a_moved_root_is_the_same_clip_list(vgg_root, tmp_path):
    roots = [tmp_path / "a", tmp_path / "b"]
    for r in roots:
        r.mkdir()
        (r / "video").symlink_to(vgg_root / "video")
        (r / "vggsound.csv").write_bytes((vgg_root / "vggsound.csv").read_bytes())
    cache = tmp_path / "cache"
    stamps = []
    for r in (roots[0], roots[1], roots[1]):
        dm = _dm(r, cache)
        build_cache(dm.list_clips(), dm.spec, cache, show_progress=False, root=r)
        dm.setup()
        stamps.append((cache / "shard-00000-of-00001" / "DONE").stat().st_mtime_ns)
    assert stamps[0] == stamps[1] == stamps[2]  # never decoded again
    assert str(roots[1]) in (cache / "shard-00000-of-00001" / "clips.csv").read_text()
    assert str(roots[0]) not in (cache / "shard-00000-of-00001" / "clips.csv").read_text()


def test_feature_store_is_one_unit_and_refused_when_stale(tmp_path, monkeypatch):
    store = tmp_path / "features"
    split = lambda n: (np.full((n, 3), n, np.float32), np.arange(n), [f"k{i}" for i in range(n)])  # noqa: E731
    write_store(store, "audio", {"train": split(4), "test": split(2)}, {"clip_list_hash": "aaa"})
    check_store(store, ["audio"], "aaa", "`make it`")
    with pytest.raises(UserError, match="another clip list.*make it again with `make it`"):
        check_store(store, ["audio"], "bbb", "`make it`")
    calls = []

    def failing_save(path, arr):
        calls.append(path)
        if len(calls) == 3:
            raise OSError("disk full")
        np.lib.format.write_array(open(path, "wb"), np.asanyarray(arr))

    monkeypatch.setattr(np, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        write_store(store, "audio", {"train": split(5), "test": split(3)}, {"clip_list_hash": "ccc"})
    monkeypatch.undo()
    assert np.load(store / "audio" / "train.npy").shape == (4, 3)  # the old store, whole
    assert np.load(store / "audio" / "test.npy").shape == (2, 3)
    assert json.loads((store / "audio" / "meta.json").read_text())["clip_list_hash"] == "aaa"
    assert sorted(p.name for p in store.iterdir()) == ["audio"]  # no partial folder left


# -- 6. split names ------------------------------------------------------------------------------------
def test_val_names_are_mapped_and_unknown_splits_counted(vgg_root, tmp_path, capsys):
    root = tmp_path / "root"
    root.mkdir()
    (root / "video").symlink_to(vgg_root / "video")
    rows = read_vggsound_csv(vgg_root / "vggsound.csv")
    names = ["val", "Validation", "trian", "trian", "tset"]
    rows = [(y, s, lab, names[i - 4] if 4 <= i < 9 else sp) for i, (y, s, lab, sp) in enumerate(rows)]
    (root / "vggsound.csv").write_text("".join(f"{y},{s},{lab},{sp}\n" for y, s, lab, sp in rows))
    dm = _dm(root, tmp_path / "cache")
    dm.setup()
    m = dm.manifest
    assert m["by_split"]["val"]["kept"] == 2 and m["unknown_splits"] == {"trian": 2, "tset": 1}
    assert len(dm.val_set) == 2 and len(dm.split_keys("val")) == 2
    assert len(dm.train_set) + len(dm.test_set) == 16 - 5
    out = capsys.readouterr().out
    assert "3 clips have a split name that is not train/val/test and are not used ('trian': 2, 'tset': 1)" in out
    assert next(iter(dm.split_dataloader("val")))["video"].shape[0] == 2


# -- 10. csv errors ------------------------------------------------------------------------------------
def test_csv_errors_name_the_line_without_the_contents(tmp_path):
    path = tmp_path / "vggsound.csv"
    secret = "a-long-label-that-must-not-be-printed"
    path.write_bytes(f"ytid,start_seconds,label,split\nabc,1,{secret},train\n".encode() + b"xyz,2,caf\xe9,test\n")
    with pytest.raises(UserError) as err:
        read_vggsound_csv(path)
    assert str(err.value).startswith(f"{path}:3: not UTF-8 text (byte 0xe9)") and secret not in str(err.value)
    path.write_text(f"ytid,start,label,split\nabc,1,{secret},train\nxyz,1.0,b,test\n")
    assert read_vggsound_csv(path) == [("abc", 1, secret, "train"), ("xyz", 1, "b", "test")]  # header skipped
    path.write_text(f"abc,1,{secret},train\nxyz,ten,b,test\n")
    with pytest.raises(UserError, match=rf"^{path}:2: the start second \(2nd field\) is not a number$"):
        read_vggsound_csv(path)
    path.write_text(f"abc,1,{secret},train\nxyz,b\n")
    with pytest.raises(UserError, match=rf"^{path}:2: expected 4 fields 'ytid,start,label,split', got 2$"):
        read_vggsound_csv(path)


# -- 12. no streams is corrupt; padded clips are counted -----------------------------------------------
def test_file_without_streams_is_corrupt_and_padding_is_counted(vgg_root, tmp_path):
    src = tmp_path / "clip.mp4"
    write_clip(src, seconds=1.0, tone_hz=440.0, colour=(200, 40, 40), size=(24, 32))
    faststart = tmp_path / "faststart.mp4"  # headers first: cut short, it opens with no streams at all
    with av.open(str(src)) as i, av.open(str(faststart), "w", options={"movflags": "faststart"}) as o:
        streams = {s.index: o.add_stream_from_template(s) for s in i.streams}
        for pkt in i.demux():
            if pkt.dts is not None:
                pkt.stream = streams[pkt.stream.index]
                o.mux(pkt)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(faststart.read_bytes()[:100])
    spec = MediaSpec(num_frames=4, frame_size=(16, 12), fps=5, sample_rate=16000, audio_samples=32000)
    with pytest.raises(ClipError) as err:
        decode_clip(cut, spec)
    assert err.value.reason == CORRUPT
    info: dict = {}
    decode_clip(src, spec, report=info)  # 1 s of audio for 2 s asked; 5 frames for 4 asked
    assert info == {"video_padded": False, "audio_padded": True}
    dm = _dm(vgg_root, tmp_path / "cache", num_frames=8)  # 1.2 s at 5 fps = 6 frames: video padded too
    dm.setup()
    assert dm.manifest["padded"] == {"any": 16, "video": 16, "audio": 16}
    assert "16 kept clips padded to length (16 video, 16 audio)" in dm.manifest["summary"]


# -- 8. preprocess.py errors ---------------------------------------------------------------------------
def test_preprocess_errors_are_one_line_with_exit_code_2(tmp_path, capsys, monkeypatch):
    sys.path.insert(0, str(SCRIPTS))
    import preprocess

    monkeypatch.setenv("GMF_DEBUG", "0")
    monkeypatch.setenv("HYDRA_FULL_ERROR", "0")
    (tmp_path / "vggsound.csv").write_text("abc,1,x,train\nabc,ten,x,train\n")
    with pytest.raises(SystemExit) as stop:
        preprocess.cli([f"data.root={tmp_path}", "--no-progress"])
    err = capsys.readouterr().err
    assert stop.value.code == 2
    assert err == f"error: {tmp_path / 'vggsound.csv'}:2: the start second (2nd field) is not a number\n"
